"""Manifest parsing (each check `parse` runs) and the artifact-type policy, without servers."""
from __future__ import annotations

import json

import pytest

from services.gateway.v2.manifest_rules import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    EMPTY_CONFIG,
    MAX_MANIFEST_BYTES,
    MEDIA_TYPE_RE,
    OCI_INDEX,
    OCI_MANIFEST,
    TAG_RE,
    Descriptor,
    Platform,
    artifact_kind,
    enforce_policy,
    parse,
)
from shared.config import parse_config
from shared.errors import RegistryError

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
ORAS_CONFIG = "application/vnd.unknown.config.v1+json"
SBOM = "application/vnd.example.sbom+json"
SBOM_LAYER = "application/vnd.example.sbom.layer+json"
A, B, C = ("sha256:" + c * 64 for c in "abc")
DROP = object()  # a field to leave out of the document


def desc(media_type: str, digest: object = A, size: object = 10, **extra) -> dict:
    return {"mediaType": media_type, "digest": digest, "size": size, **extra}


def image(**changes) -> dict:
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": desc(OCI_CONFIG), "layers": [desc(LAYER_GZIP, B, 20)]}
    doc.update(changes)
    return {k: v for k, v in doc.items() if v is not DROP}


def index(*children: dict, **changes) -> dict:
    doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list(children) or [desc(OCI_MANIFEST)]}
    doc.update(changes)
    return {k: v for k, v in doc.items() if v is not DROP}


def artifact(artifact_type: str | None = SBOM, config_type: str = EMPTY_CONFIG, *layer_types: str) -> dict:
    doc = image(config=desc(config_type), layers=[desc(t, B) for t in layer_types or (SBOM_LAYER,)])
    if artifact_type is not None:
        doc["artifactType"] = artifact_type
    return doc


def encode(doc) -> bytes:
    return doc if isinstance(doc, bytes) else json.dumps(doc).encode()


def refusal(body, content_type: str | None = OCI_MANIFEST) -> RegistryError:
    with pytest.raises(RegistryError) as caught:
        parse(encode(body), content_type)
    return caught.value


# --- parse: what each check refuses ----------------------------------------------------------------

REFUSED = [
    # (case, body, Content-Type, words the message must contain)
    ("not JSON", b"{not json", OCI_MANIFEST, "manifest is not valid JSON"),
    ("not UTF-8", b"\xff\xfe{}", OCI_MANIFEST, "manifest is not valid JSON"),
    ("a JSON list", [image()], OCI_MANIFEST, "manifest must be a JSON object"),
    ("nested too deeply", b"[" * 100_000, OCI_MANIFEST, "manifest is not valid JSON: nested too deeply"),
    ("schema1 by mediaType", image(schemaVersion=1, mediaType="application/vnd.docker.distribution.manifest.v1+json"),
     None, "Docker schema1 manifests are not supported"),
    ("schema1 by Content-Type", {"schemaVersion": 1, "name": "x"}, "application/vnd.docker.distribution.manifest.v1+prettyjws",
     "Docker schema1 manifests are not supported"),
    ("schemaVersion 1", image(schemaVersion=1), OCI_MANIFEST, "schemaVersion must be 2, got 1"),
    ("schemaVersion missing", image(schemaVersion=DROP), OCI_MANIFEST, "schemaVersion must be 2, got None"),
    ("schemaVersion as a string", image(schemaVersion="2"), OCI_MANIFEST, "schemaVersion must be 2, got '2'"),
    ("Content-Type disagrees", image(), OCI_INDEX,
     f"Content-Type '{OCI_INDEX}' does not match the manifest's mediaType '{OCI_MANIFEST}'"),
    ("unknown mediaType", image(mediaType="application/vnd.example.manifest+json"), None,
     "unsupported manifest media type 'application/vnd.example.manifest+json'"),
    ("mediaType not a string", image(mediaType=["x"]), None, "unsupported manifest media type ['x']"),
    ("artifactType not a media type", image(artifactType="sbom"), OCI_MANIFEST, "artifactType 'sbom' is not a valid media type"),
    ("artifactType not a string", image(artifactType=7), OCI_MANIFEST, "artifactType 7 is not a valid media type"),
    ("annotations a list", image(annotations=["a"]), OCI_MANIFEST, "annotations must be a map of strings"),
    ("annotation value a number", image(annotations={"a": 1}), OCI_MANIFEST, "annotations must be a map of strings"),
    ("subject not an object", image(subject="sha256:x"), OCI_MANIFEST, "subject must be a descriptor object"),
    ("subject digest bad", image(subject=desc(OCI_MANIFEST, "sha256:abc")), OCI_MANIFEST, "subject.digest: invalid sha256 digest"),
    ("index without manifests", index(manifests=DROP), OCI_INDEX, "an index needs a manifests list"),
    ("index manifests an object", index(manifests={}), OCI_INDEX, "an index needs a manifests list"),
    ("index child not an object", index(manifests=[A]), OCI_INDEX, "manifests[0] must be a descriptor object"),
    ("index child size missing", index(desc(OCI_MANIFEST), {"mediaType": OCI_MANIFEST, "digest": B}), OCI_INDEX,
     "manifests[1].size None must be a non-negative integer"),
    ("platform not an object", index(desc(OCI_MANIFEST, platform="linux/amd64")), OCI_INDEX,
     "manifests[0].platform must be an object"),
    ("platform os not a string", index(desc(OCI_MANIFEST, platform={"os": 7, "architecture": "amd64"})), OCI_INDEX,
     "manifests[0].platform.os 7 must be a string"),
    ("platform variant not a string", index(desc(OCI_MANIFEST, platform={"os": "linux", "architecture": "arm", "variant": ["v7"]})),
     OCI_INDEX, "manifests[0].platform.variant ['v7'] must be a string"),
    ("image without config", image(config=DROP), OCI_MANIFEST, "an image manifest needs a config descriptor"),
    ("config mediaType bad", image(config=desc("nope")), OCI_MANIFEST, "config.mediaType 'nope' is not a valid media type"),
    ("config mediaType missing", image(config={"digest": A, "size": 1}), OCI_MANIFEST, "config.mediaType None is not a valid media type"),
    ("layers an object", image(layers={}), OCI_MANIFEST, "layers must be a list"),
    ("layer size negative", image(layers=[desc(LAYER_GZIP, size=-1)]), OCI_MANIFEST, "layers[0].size -1 must be a non-negative integer"),
    ("layer size a boolean", image(layers=[desc(LAYER_GZIP, size=True)]), OCI_MANIFEST,
     "layers[0].size True must be a non-negative integer"),
    ("layer size a string", image(layers=[desc(LAYER_GZIP, size="12")]), OCI_MANIFEST,
     "layers[0].size '12' must be a non-negative integer"),
    ("layer size a float", image(layers=[desc(LAYER_GZIP, size=1.5)]), OCI_MANIFEST, "layers[0].size 1.5 must be a non-negative integer"),
    ("layer digest missing", image(layers=[{"mediaType": LAYER_GZIP, "size": 1}]), OCI_MANIFEST,
     "layers[0].digest: invalid digest format: None"),
    ("layer digest a number", image(layers=[desc(LAYER_GZIP, digest=5)]), OCI_MANIFEST, "layers[0].digest: invalid digest format: 5"),
    ("layer digest md5", image(layers=[desc(LAYER_GZIP, digest="md5:" + "0" * 32)]), OCI_MANIFEST,
     "layers[0].digest: unsupported digest algorithm 'md5'"),
    ("second layer bad", image(layers=[desc(LAYER_GZIP), desc("text plain")]), OCI_MANIFEST,
     "layers[1].mediaType 'text plain' is not a valid media type"),
    ("layer mediaType with a trailing newline", image(layers=[desc("text/plain\n")]), OCI_MANIFEST,
     "layers[0].mediaType 'text/plain\\n' is not a valid media type"),
]


@pytest.mark.parametrize("body, content_type, words", [case[1:] for case in REFUSED], ids=[case[0] for case in REFUSED])
def test_parse_refuses_with_a_message_naming_the_field(body, content_type, words):
    error = refusal(body, content_type)
    assert error.code == "MANIFEST_INVALID"
    assert error.status == 400
    assert words in error.message


def test_size_limit_is_inclusive_and_answered_413():
    doc = encode(image())
    at_limit = doc + b" " * (MAX_MANIFEST_BYTES - len(doc))
    assert parse(at_limit, OCI_MANIFEST).media_type == OCI_MANIFEST
    error = refusal(at_limit + b" ")
    assert (error.code, error.status) == ("SIZE_INVALID", 413)
    assert error.message == f"manifest is {MAX_MANIFEST_BYTES + 1} bytes; the limit is 4 MiB"


def test_checks_run_in_order_schema1_before_schema_version():
    # A schema1 manifest also has schemaVersion 1: the client must hear the reason that helps it.
    error = refusal({"schemaVersion": 1, "mediaType": "application/vnd.docker.distribution.manifest.v1+json"}, None)
    assert "schema1" in error.message


# --- parse: what it accepts, and the media type it settles on -------------------------------------

MEDIA_TYPES = [
    # (case, body, Content-Type, media type, is_index)
    ("OCI image", image(), OCI_MANIFEST, OCI_MANIFEST, False),
    ("Content-Type with parameters", image(), f"{OCI_MANIFEST}; charset=utf-8", OCI_MANIFEST, False),
    ("generic Content-Type application/json", image(), "application/json", OCI_MANIFEST, False),
    ("generic Content-Type octet-stream", index(), "application/octet-stream", OCI_INDEX, True),
    ("no mediaType: the Content-Type says", index(mediaType=DROP), OCI_INDEX, OCI_INDEX, True),
    ("no mediaType, no Content-Type: a manifests list is an index", index(mediaType=DROP), None, OCI_INDEX, True),
    ("no mediaType, no Content-Type: else an image", image(mediaType=DROP), None, OCI_MANIFEST, False),
    ("no mediaType, unknown Content-Type: the shape says", image(mediaType=DROP), "text/plain", OCI_MANIFEST, False),
    ("Docker schema2", image(mediaType=DOCKER_MANIFEST, config=desc(DOCKER_CONFIG)), DOCKER_MANIFEST, DOCKER_MANIFEST, False),
    ("Docker manifest list", index(mediaType=DOCKER_LIST), DOCKER_LIST, DOCKER_LIST, True),
    ("an image with no layers", image(layers=DROP), OCI_MANIFEST, OCI_MANIFEST, False),
]


@pytest.mark.parametrize("body, content_type, media_type, is_index", [c[1:] for c in MEDIA_TYPES], ids=[c[0] for c in MEDIA_TYPES])
def test_parse_settles_the_media_type(body, content_type, media_type, is_index):
    parsed = parse(encode(body), content_type)
    assert parsed.media_type == media_type
    assert parsed.is_index is is_index
    assert (parsed.config is None) is is_index


def test_image_parts_are_recorded():
    doc = image(layers=[desc(LAYER_GZIP, B, 20), desc(LAYER_TAR, C, 30, urls=["https://example.com/x"])])
    parsed = parse(encode(doc), OCI_MANIFEST)
    assert parsed.config == Descriptor(OCI_CONFIG, A, 10)
    assert parsed.config_media_type == OCI_CONFIG
    assert parsed.layers == [Descriptor(LAYER_GZIP, B, 20), Descriptor(LAYER_TAR, C, 30)]
    assert parsed.children == [] and parsed.subject is None and parsed.artifact_type is None and parsed.annotations is None


def test_artifact_fields_are_recorded():
    doc = artifact(SBOM, EMPTY_CONFIG, SBOM_LAYER)
    doc["subject"] = desc(OCI_MANIFEST, C, 99)
    doc["annotations"] = {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"}
    parsed = parse(encode(doc), OCI_MANIFEST)
    assert parsed.artifact_type == SBOM
    assert parsed.subject == Descriptor(OCI_MANIFEST, C, 99)
    assert parsed.annotations == {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"}
    assert parsed.config_media_type == EMPTY_CONFIG


def test_null_subject_and_annotations_mean_none():
    parsed = parse(encode(image(subject=None, annotations=None)), OCI_MANIFEST)
    assert parsed.subject is None and parsed.annotations is None


def test_index_children_record_their_platform():
    doc = index(
        desc(OCI_MANIFEST, A, 1, platform={"os": "linux", "architecture": "arm64", "variant": "v8", "os.features": ["x"]}),
        desc(OCI_MANIFEST, B, 2, platform={"os": "linux", "architecture": "amd64"}),
        desc(OCI_MANIFEST, C, 3),
        desc(OCI_MANIFEST, A, 4, platform=None),
    )
    parsed = parse(encode(doc), OCI_INDEX)
    assert parsed.children == [
        Descriptor(OCI_MANIFEST, A, 1, Platform("linux", "arm64", "v8")),
        Descriptor(OCI_MANIFEST, B, 2, Platform("linux", "amd64", None)),
        Descriptor(OCI_MANIFEST, C, 3, None),
        Descriptor(OCI_MANIFEST, A, 4, None),
    ]
    assert parsed.layers == []


def test_only_index_children_carry_a_platform():
    doc = image(config=desc(OCI_CONFIG, platform={"os": "linux", "architecture": "amd64"}))
    config = parse(encode(doc), OCI_MANIFEST).config
    assert config is not None and config.platform is None


def test_an_empty_index_is_accepted():
    assert parse(encode(index(manifests=[])), OCI_INDEX).children == []


@pytest.mark.parametrize("tag, valid", [
    ("latest", True), ("v1.2.3-rc_1", True), ("_hidden", True), ("a" * 128, True), ("A", True),
    ("a" * 129, False), ("-v1", False), (".v1", False), ("v1/x", False), ("v1:x", False), ("", False),
    ("v1\n", False), ("v 1", False),
])
def test_tag_names(tag, valid):
    assert bool(TAG_RE.match(tag)) is valid


@pytest.mark.parametrize("media_type, valid", [
    ("text/plain", True), ("application/vnd.oci.image.layer.v1.tar+gzip", True), ("application/vnd.a+b+c", True),
    ("text", False), ("text/", False), ("/plain", False), ("text/plain; charset=utf-8", False), ("text/plain\n", False),
    ("text/pl ain", False), ("a/b/c", False),
])
def test_media_type_syntax(media_type, valid):
    assert bool(MEDIA_TYPE_RE.match(media_type)) is valid


# --- the artifact-type policy ---------------------------------------------------------------------

KINDS = [
    # (case, manifest, kind)
    ("OCI image", image(), None),
    ("Docker image", image(mediaType=DOCKER_MANIFEST, config=desc(DOCKER_CONFIG)), None),
    ("empty config names itself by artifactType", artifact(SBOM, EMPTY_CONFIG), SBOM),
    ("empty config without artifactType", artifact(None, EMPTY_CONFIG), EMPTY_CONFIG),
    ("own config type", artifact(None, ORAS_CONFIG), ORAS_CONFIG),
    ("own config type wins over artifactType", artifact(SBOM, "application/vnd.cncf.helm.config.v1+json"),
     "application/vnd.cncf.helm.config.v1+json"),
    ("image config with artifactType is an artifact", artifact(SBOM, OCI_CONFIG), OCI_CONFIG),
]


@pytest.mark.parametrize("doc, kind", [c[1:] for c in KINDS], ids=[c[0] for c in KINDS])
def test_artifact_kind(doc, kind):
    assert artifact_kind(parse(encode(doc), None)) == kind


def policy_refusal(doc: dict, **config) -> RegistryError | None:
    parsed = parse(encode(doc), doc.get("mediaType"))
    try:
        enforce_policy(parsed, parse_config(config))
    except RegistryError as exc:
        assert exc.code == "MANIFEST_INVALID" and exc.status == 400
        return exc
    return None


ALLOWED = {SBOM: [SBOM_LAYER], OCI_CONFIG: ["application/vnd.dev.cosign.simplesigning.v1+json"]}
ACCEPTED = [
    # (case, manifest, config keys)
    ("oras defaults: unknown config, text/plain layer", artifact(None, ORAS_CONFIG, "text/plain"), {}),
    ("oras defaults: unknown config, plain tar layer", artifact(None, ORAS_CONFIG, LAYER_TAR), {}),
    ("unknown artifactType and layer type", artifact("application/vnd.unheard.of+json", EMPTY_CONFIG, "application/x-whatever"), {}),
    ("empty config without artifactType", artifact(None, EMPTY_CONFIG, "text/plain"), {}),
    ("an image with an unknown layer type", image(layers=[desc("application/vnd.example.layer.v1", B)]), {}),
    ("an image", image(), {"FEATURE_GENERAL_OCI_SUPPORT": False}),
    ("a Docker image", image(mediaType=DOCKER_MANIFEST, config=desc(DOCKER_CONFIG), layers=[desc(
        "application/vnd.docker.image.rootfs.diff.tar.gzip", B)]), {"ALLOWED_OCI_ARTIFACT_TYPES": {}}),
    ("an index even with an empty allow-list", index(), {"ALLOWED_OCI_ARTIFACT_TYPES": {}}),
    ("an index even with artifacts off", index(artifactType=SBOM), {"FEATURE_GENERAL_OCI_SUPPORT": False}),
    ("explicit null allow-list is unset", artifact("application/vnd.unheard.of+json"), {"ALLOWED_OCI_ARTIFACT_TYPES": None}),
    ("listed artifact with a listed layer", artifact(SBOM, EMPTY_CONFIG, SBOM_LAYER), {"ALLOWED_OCI_ARTIFACT_TYPES": ALLOWED}),
    ("listed artifact with the empty blob as a layer", artifact(SBOM, EMPTY_CONFIG, EMPTY_CONFIG), {"ALLOWED_OCI_ARTIFACT_TYPES": ALLOWED}),
    ("image layers plus those listed under the image config", image(layers=[
        desc(LAYER_GZIP, B), desc("application/vnd.dev.cosign.simplesigning.v1+json", C)]), {"ALLOWED_OCI_ARTIFACT_TYPES": ALLOWED}),
    ("image config with artifactType takes image layers", artifact(SBOM, OCI_CONFIG, LAYER_GZIP), {"ALLOWED_OCI_ARTIFACT_TYPES": ALLOWED}),
    ("IGNORE_UNKNOWN_MEDIATYPES lifts the allow-list", artifact("application/vnd.unheard.of+json", EMPTY_CONFIG, "x/y"),
     {"ALLOWED_OCI_ARTIFACT_TYPES": ALLOWED, "IGNORE_UNKNOWN_MEDIATYPES": True}),
]


@pytest.mark.parametrize("doc, config", [c[1:] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED])
def test_policy_accepts(doc, config):
    assert policy_refusal(doc, **config) is None


REFUSED_BY_POLICY = [
    # (case, manifest, config keys, message, detail)
    ("artifacts off", artifact(SBOM), {"FEATURE_GENERAL_OCI_SUPPORT": False},
     f"artifact type '{SBOM}' refused: OCI artifacts are disabled (FEATURE_GENERAL_OCI_SUPPORT is false)", {"artifactType": SBOM}),
    ("artifacts off: a config-typed artifact", artifact(None, "application/vnd.cncf.helm.config.v1+json", "application/tar+gzip"),
     {"FEATURE_GENERAL_OCI_SUPPORT": False},
     "artifact type 'application/vnd.cncf.helm.config.v1+json' refused: OCI artifacts are disabled (FEATURE_GENERAL_OCI_SUPPORT is false)",
     {"artifactType": "application/vnd.cncf.helm.config.v1+json"}),
    ("artifacts off wins over IGNORE_UNKNOWN_MEDIATYPES", artifact(SBOM), {"FEATURE_GENERAL_OCI_SUPPORT": False,
                                                                         "IGNORE_UNKNOWN_MEDIATYPES": True},
     f"artifact type '{SBOM}' refused: OCI artifacts are disabled (FEATURE_GENERAL_OCI_SUPPORT is false)", {"artifactType": SBOM}),
    ("unlisted artifact type", artifact("application/vnd.unheard.of+json"), {"ALLOWED_OCI_ARTIFACT_TYPES": ALLOWED},
     "artifact type 'application/vnd.unheard.of+json' is not allowed: add it to ALLOWED_OCI_ARTIFACT_TYPES "
     "or set IGNORE_UNKNOWN_MEDIATYPES: true", {"artifactType": "application/vnd.unheard.of+json"}),
    ("oras defaults with an allow-list", artifact(None, ORAS_CONFIG, "text/plain"), {"ALLOWED_OCI_ARTIFACT_TYPES": ALLOWED},
     f"artifact type '{ORAS_CONFIG}' is not allowed: add it to ALLOWED_OCI_ARTIFACT_TYPES or set IGNORE_UNKNOWN_MEDIATYPES: true",
     {"artifactType": ORAS_CONFIG}),
    ("unlisted layer of a listed artifact", artifact(SBOM, EMPTY_CONFIG, SBOM_LAYER, "application/x-unknown"),
     {"ALLOWED_OCI_ARTIFACT_TYPES": ALLOWED},
     f"layer media type 'application/x-unknown' is not allowed for {SBOM} manifests: add it to ALLOWED_OCI_ARTIFACT_TYPES "
     "or set IGNORE_UNKNOWN_MEDIATYPES: true", {"layer": 1, "mediaType": "application/x-unknown"}),
    ("unlisted layer of an image", image(layers=[desc("text/plain", B)]), {"ALLOWED_OCI_ARTIFACT_TYPES": ALLOWED},
     "layer media type 'text/plain' is not allowed for image manifests: add it to ALLOWED_OCI_ARTIFACT_TYPES "
     "or set IGNORE_UNKNOWN_MEDIATYPES: true", {"layer": 0, "mediaType": "text/plain"}),
    ("an empty allow-list refuses every artifact", artifact(SBOM), {"ALLOWED_OCI_ARTIFACT_TYPES": {}},
     f"artifact type '{SBOM}' is not allowed: add it to ALLOWED_OCI_ARTIFACT_TYPES or set IGNORE_UNKNOWN_MEDIATYPES: true",
     {"artifactType": SBOM}),
]


@pytest.mark.parametrize("doc, config, message, detail", [c[1:] for c in REFUSED_BY_POLICY], ids=[c[0] for c in REFUSED_BY_POLICY])
def test_policy_refuses_naming_the_key(doc, config, message, detail):
    error = policy_refusal(doc, **config)
    assert error is not None
    assert error.message == message
    assert error.detail == detail


def test_allow_list_is_unset_by_default():
    assert parse_config({}).allowed_oci_artifact_types is None
    assert parse_config({"ALLOWED_OCI_ARTIFACT_TYPES": {SBOM: [SBOM_LAYER]}}).allowed_oci_artifact_types == {SBOM: [SBOM_LAYER]}
