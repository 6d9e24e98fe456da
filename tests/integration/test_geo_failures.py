"""Two regions when parts fail: a replicator killed mid-copy, NATS down during a push, a region's
storage down, and the whole thing over TLS with a test CA."""
from __future__ import annotations

import datetime
import os
import signal
import subprocess
import sys

import pytest
import yaml

from shared.embedded import start_nats, start_seaweedfs
from shared.storage.paths import blob as blob_path
from tests.conftest import local_spec, s3_location
from tests.helpers import eventually
from tests.integration.test_geo import placements, pull, push


async def test_replicator_killed_mid_copy_completes_after_restart(make_regions, own_seaweedfs, tmp_path, db):
    weed = own_seaweedfs["server"]
    regions = await make_regions({"us": s3_location(weed.url, own_seaweedfs["bucket"]), "eu": local_spec(tmp_path / "eu")},
                                 replicate={"eu": False}, MERIDIAN_PARTIAL_OBJECT_MAX_AGE_SEC=0)
    us, eu = regions["us"], regions["eu"]
    data = os.urandom(64 * 1024 * 1024)
    digest = await push(us, "acme/big", data)
    config = tmp_path / "eu.yaml"
    config.write_text(yaml.safe_dump(eu.doc))
    command = [sys.executable, "-m", "services.cli", "replicator", "--config", str(config)]
    with open(tmp_path / "replicator.log", "ab") as log:
        replicator = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    partial_dir = tmp_path / "eu" / ".tmp"

    async def copying():
        if replicator.poll() is not None:
            raise AssertionError((tmp_path / "replicator.log").read_text())
        # Part-way: some bytes written, not all (a complete partial is renamed into place a moment later).
        return any(0 < p.stat().st_size < len(data) for p in partial_dir.iterdir()) if partial_dir.exists() else False

    try:
        await eventually(copying, timeout=30, interval=0.005, what="the copy to start")
        replicator.send_signal(signal.SIGSTOP)  # frozen mid-copy at once: it cannot finish between here and the kill
        weed.process.send_signal(signal.SIGSTOP)  # the source stalls too
        replicator.kill()
        replicator.wait()
        weed.process.send_signal(signal.SIGCONT)
        assert await placements(db, digest) == ["us"]
        assert [p for p in partial_dir.iterdir()], "a partial copy should be left by the killed process"

        with open(tmp_path / "replicator.log", "ab") as log:
            replicator = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

        async def placed():
            return await placements(db, digest) == ["eu", "us"]

        await eventually(placed, timeout=60, what="the copy to complete after restart")
        assert (tmp_path / "eu" / blob_path(digest)).read_bytes() == data
        assert not [p for p in partial_dir.iterdir()]  # the interrupted copy was cleaned up
        assert await db.fetchval("SELECT count(*) FROM blob_placements p JOIN blobs b ON b.id = p.blob_id WHERE b.digest = $1", digest) == 2
    finally:
        weed.process.send_signal(signal.SIGCONT)
        if replicator.poll() is None:
            replicator.terminate()
            replicator.wait(15)


async def test_push_while_nats_is_down_reaches_the_other_region(make_regions, tmp_path, db):
    nats_server = start_nats(tmp_path / "nats")
    port = int(nats_server.url.rsplit(":", 1)[1])
    try:
        regions = await make_regions({"us": local_spec(tmp_path / "us"), "eu": local_spec(tmp_path / "eu")},
                                     NATS_URL=nats_server.url)
        us = regions["us"]
        nats_server.stop()
        digest = await push(us, "acme/app", os.urandom(50_000))  # succeeds without NATS
        assert await placements(db, digest) == ["us"]
        nats_server = start_nats(tmp_path / "nats", port=port)

        async def replicated():
            return await placements(db, digest) == ["eu", "us"]

        await eventually(replicated, timeout=60, what="the blob to reach eu after NATS returned")
    finally:
        nats_server.stop()


async def test_other_regions_storage_down_pulls_fail_over_and_replication_catches_up(make_regions, own_seaweedfs, tmp_path, db):
    weed = own_seaweedfs["server"]
    regions = await make_regions({"us": local_spec(tmp_path / "us"), "eu": s3_location(weed.url, own_seaweedfs["bucket"])},
                                 MERIDIAN_REPLICATION_MAX_DELIVER=100)
    us, eu = regions["us"], regions["eu"]
    first = os.urandom(200_000)
    first_digest = await push(us, "acme/app", first)

    async def first_in_eu():
        return await placements(db, first_digest) == ["eu", "us"]

    await eventually(first_in_eu, what="replication to eu")
    status, body, served_by = await pull(eu, "acme/app", first_digest)
    assert (status, served_by, body == first) == (200, "eu", True)

    weed.stop()
    status, body, served_by = await pull(eu, "acme/app", first_digest)
    assert (status, served_by, body == first) == (200, "us", True)  # eu's own copy is unreachable
    second = os.urandom(100_000)
    second_digest = await push(us, "acme/app", second)

    async def holding():
        return not eu.replicator.locations.own_is_up()

    await eventually(holding, timeout=30, what="eu's replicator to see its storage down and hold its copies")
    assert await placements(db, second_digest) == ["us"]  # nothing placed while eu cannot be written
    assert await db.fetchval("SELECT count(*) FROM replication_failures") == 0  # and no copy given up

    own_seaweedfs["server"] = start_seaweedfs(tmp_path / "weed", ports=weed.extra["ports"])

    async def second_in_eu():
        return await placements(db, second_digest) == ["eu", "us"]

    await eventually(second_in_eu, timeout=60, what="replication to catch up once eu's storage returned")

    async def served_from_eu_again():
        status, body, served_by = await pull(eu, "acme/app", second_digest)
        return status == 200 and body == second and served_by == "eu"

    await eventually(served_from_eu_again, timeout=10, what="eu to serve from its own storage again")


def make_test_ca(folder):
    """A CA and a server certificate for 127.0.0.1/localhost, laid out as Quay expects."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Meridian test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ssl.cert").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "ssl.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    (folder / "extra_ca_certs").mkdir(exist_ok=True)
    (folder / "extra_ca_certs" / "test-ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))


async def test_two_regions_over_tls(make_regions, make_bucket, tmp_path, db):
    from shared.tls import server_context

    config_dir = tmp_path / "config"
    make_test_ca(config_dir)
    regions = await make_regions({"us": s3_location(*make_bucket()), "eu": s3_location(*make_bucket())},
                                 replicate={"eu": False}, server_ssl=server_context(config_dir), config_dir=config_dir)
    us, eu = regions["us"], regions["eu"]
    assert us.gateway_url.startswith("https://") and eu.doc["MERIDIAN_BLOBSTORE_URLS"]["us"].startswith("https://")
    data = os.urandom(500_000)
    digest = await push(us, "acme/app", data)
    status, body, served_by = await pull(eu, "acme/app", digest)  # eu reads us's blobstore over verified TLS
    assert (status, served_by, body == data) == (200, "us", True)

    import aiohttp

    async with aiohttp.ClientSession() as untrusting:  # the system CAs alone do not know the test CA
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await untrusting.get(us.v2(""))

    from services.replicator.app import Replicator

    eu.replicator = Replicator(eu.config, config_dir=config_dir)
    await eu.replicator.start()

    async def replicated():
        return await placements(db, digest) == ["eu", "us"]

    await eventually(replicated, what="replication over TLS")
    status, body, served_by = await pull(eu, "acme/app", digest)
    assert (status, served_by, body == data) == (200, "eu", True)
