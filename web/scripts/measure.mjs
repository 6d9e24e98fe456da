// Sizes the JavaScript the first route needs (the entry, the Repositories page, and everything they
// import statically), gzipped, and fails the build above the budget. `npm run build` runs it.
import { readFileSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";

const BUDGET = 500 * 1024;
const FIRST_ROUTE = "src/pages/RepositoriesList.tsx";
const manifest = JSON.parse(readFileSync("dist/.vite/manifest.json", "utf8"));
const entry = Object.keys(manifest).find((key) => manifest[key].isEntry);
const seen = new Set();
const visit = (key) => {
  if (seen.has(key) || !manifest[key]) return;
  seen.add(key);
  for (const imported of manifest[key].imports ?? []) visit(imported);
};
visit(entry);
if (!manifest[FIRST_ROUTE]) throw new Error(`${FIRST_ROUTE} is not its own chunk: is it loaded with React.lazy?`);
visit(FIRST_ROUTE);
let raw = 0;
let gzipped = 0;
const files = [];
for (const key of seen) {
  const bytes = readFileSync(`dist/${manifest[key].file}`);
  const size = gzipSync(bytes, { level: 9 }).length;
  raw += bytes.length;
  gzipped += size;
  files.push({ file: manifest[key].file, gzip: size });
}
const total = Object.values(manifest).filter((m) => m.file.endsWith(".js")).length;
writeFileSync("dist/.vite/first-route.json", JSON.stringify({ gzip_bytes: gzipped, raw_bytes: raw, budget: BUDGET, files }, null, 1));
console.log(`first route JavaScript: ${(gzipped / 1024).toFixed(1)} KB gzipped (${(raw / 1024).toFixed(1)} KB raw) in ${files.length} of ${total} chunks; budget ${BUDGET / 1024} KB`);
if (gzipped > BUDGET) {
  console.error("first route JavaScript is over budget");
  process.exit(1);
}
