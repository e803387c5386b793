// Checks the desktop player's inflater (assets/desktop.js) against
// samples that TestDesktopInflateJS writes with Go's compress/flate:
// node inflate.js desktop.js samples.bin. Each sample is: raw length,
// compressed length (u32, little-endian), a flag (1: the compressed bytes
// are damaged), the raw bytes, the compressed bytes. A good sample must
// inflate to its raw bytes; a damaged one must throw or give the right
// length (the record's CRC-32C catches what DEFLATE cannot).
"use strict";
const fs = require("fs");
const src = fs.readFileSync(process.argv[2], "utf8");
const from = src.indexOf("  const LBASE"), to = src.indexOf("  // A reader over one unescaped record.");
if (from < 0 || to < 0) throw new Error("inflateSync not found in " + process.argv[2]);
const inflateSync = new Function(src.slice(from, to) + "; return inflateSync;")();
const buf = fs.readFileSync(process.argv[3]);
let i = 0, good = 0, damaged = 0, refused = 0;
while (i < buf.length) {
  const rawLen = buf.readUInt32LE(i), compLen = buf.readUInt32LE(i + 4), bad = buf[i + 8];
  i += 9;
  const raw = buf.subarray(i, i + rawLen); i += rawLen;
  const comp = new Uint8Array(buf.subarray(i, i + compLen)); i += compLen;
  if (!bad) {
    const out = inflateSync(comp, rawLen);
    if (Buffer.compare(Buffer.from(out), raw) !== 0) throw new Error("sample " + (good + damaged) + ": inflated bytes differ");
    good++;
    continue;
  }
  damaged++;
  try {
    const out = inflateSync(comp, rawLen);
    if (out.length !== rawLen) throw new Error("damaged sample: " + out.length + " bytes, want " + rawLen);
  } catch (e) {
    if (!(e instanceof Error) || !/pixel data/.test(e.message)) throw e;
    refused++;
  }
}
console.log(`good ${good}, damaged ${damaged} (refused ${refused})`);
