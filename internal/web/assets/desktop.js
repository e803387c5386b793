// reel web UI: the desktop recording player (docs/desktop-format.md).
// It draws on a <canvas>; nothing from a recording ever becomes markup.
//
// The server gives the keyframe table (desk/index.json) and one segment
// per keyframe (desk/seg/N: the stored bytes from keyframe N to keyframe
// N+1). A segment decodes alone: seeking to T fetches the segment of the
// last keyframe at or before T and applies its records up to T. Playing
// goes on into the next segment, fetched ahead of time; so is the segment
// under a pointer that moves over the progress bar.
"use strict";

(function () {
  const MAX_SIDE = 16384, MAX_PIXELS = 7680 * 4320, MAX_CURSOR = 256;
  const LE = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

  // CRC-32C (Castagnoli), as every record ends with.
  const crcTable = (() => {
    const t = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
      t[n] = c >>> 0;
    }
    return t;
  })();
  function crc32c(b, from, to) {
    let c = 0xffffffff;
    for (let i = from; i < to; i++) c = crcTable[(c ^ b[i]) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  }

  // Raw DEFLATE (RFC 1951), inflated here, synchronously, only when a
  // record is drawn: a segment holds hundreds of small regions, a seek
  // needs only those up to its moment, and a DecompressionStream costs
  // set-up and trips through the event loop for each. Even a 1080p
  // keyframe (6 MB) came out slower through a DecompressionStream (read
  // into one buffer) than through this inflater, in headless Chromium
  // (docs/vnc.md, "Seek in the web UI").
  const LBASE = new Uint16Array([3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]);
  const LEXT = new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]);
  const DBASE = new Uint16Array([1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577]);
  const DEXT = new Uint8Array([0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]);
  const CLORDER = new Uint8Array([16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]);

  // huffman makes a decoding table for a canonical Huffman code from its
  // code lengths: indexed by the next max bits of input (least significant
  // first, as DEFLATE packs codes reversed), each entry is the symbol << 4
  // | the code's length (0: no such code).
  function huffman(lengths, n) {
    const counts = new Uint16Array(16), next = new Uint16Array(16);
    let max = 0;
    for (let i = 0; i < n; i++) {
      counts[lengths[i]]++;
      if (lengths[i] > max) max = lengths[i];
    }
    counts[0] = 0;
    let left = 1, code = 0;
    for (let len = 1; len < 16; len++) {
      left = left * 2 - counts[len];
      if (left < 0) throw new Error("bad Huffman code in pixel data");
      code = (code + counts[len - 1]) << 1;
      next[len] = code;
    }
    const size = 1 << max, tab = new Uint32Array(size);
    for (let sym = 0; sym < n; sym++) {
      const len = lengths[sym];
      if (!len) continue;
      let c = next[len]++, r = 0;
      for (let k = 0; k < len; k++, c >>= 1) r = (r << 1) | (c & 1);
      for (let k = r; k < size; k += 1 << len) tab[k] = (sym << 4) | len;
    }
    return { tab, max, mask: size - 1 };
  }
  const FIXED = (() => {
    const l = new Uint8Array(320);
    l.fill(8, 0, 144); l.fill(9, 144, 256); l.fill(7, 256, 280); l.fill(8, 280, 288); l.fill(5, 288, 318);
    return { lit: huffman(l, 288), dist: huffman(l.subarray(288), 30) };
  })();

  // inflateSync inflates src, which must give exactly want bytes. With
  // scratch, the result is in a buffer that the next such call reuses
  // (pixels read once, at once): a keyframe's 6 MB is not allocated, and
  // later collected, at every seek.
  //
  // It is written for the JIT: one function, its state in locals (no
  // closure over the bit buffer, which would keep it in memory rather
  // than registers), tables in typed arrays, short copies by hand. The
  // bit buffer holds at most 30 bits, so it stays a small integer.
  let scratchBuf = new Uint8Array(0);
  function inflateSync(src, want, scratch) {
    let out;
    if (scratch) {
      if (scratchBuf.length < want) scratchBuf = new Uint8Array(want);
      out = scratchBuf.subarray(0, want);
    } else {
      out = new Uint8Array(want);
    }
    const n = src.length, st = { pos: 0, bb: 0, bc: 0, o: 0 };
    let pos = 0, bb = 0, bc = 0, o = 0;
    for (let last = 0; !last;) {
      while (bc <= 22 && pos < n) { bb |= src[pos++] << bc; bc += 8; }
      if (bc < 3) throw new Error("pixel data cut short");
      last = bb & 1;
      const type = (bb >>> 1) & 3;
      bb >>>= 3; bc -= 3;
      if (type === 0) {
        // Stored: from the next byte boundary (whole bytes still in the
        // bit buffer are given back).
        pos -= bc >>> 3;
        bb = 0; bc = 0;
        if (pos + 4 > n) throw new Error("pixel data cut short");
        const len = src[pos] | (src[pos + 1] << 8), nlen = src[pos + 2] | (src[pos + 3] << 8);
        pos += 4;
        if (len !== (~nlen & 0xffff) || pos + len > n || o + len > want) throw new Error("bad stored block in pixel data");
        out.set(src.subarray(pos, pos + len), o);
        pos += len; o += len;
        continue;
      }
      let lit, dist;
      if (type === 1) {
        lit = FIXED.lit; dist = FIXED.dist;
      } else if (type === 2) {
        while (bc <= 22 && pos < n) { bb |= src[pos++] << bc; bc += 8; }
        if (bc < 14) throw new Error("pixel data cut short");
        const nlit = (bb & 31) + 257, ndist = ((bb >>> 5) & 31) + 1, ncl = ((bb >>> 10) & 15) + 4;
        bb >>>= 14; bc -= 14;
        if (nlit > 286 || ndist > 30) throw new Error("bad code lengths in pixel data");
        const cl = new Uint8Array(19);
        for (let i = 0; i < ncl; i++) {
          while (bc <= 22 && pos < n) { bb |= src[pos++] << bc; bc += 8; }
          if (bc < 3) throw new Error("pixel data cut short");
          cl[CLORDER[i]] = bb & 7;
          bb >>>= 3; bc -= 3;
        }
        const clh = huffman(cl, 19), ctab = clh.tab, cmask = clh.mask;
        const lens = new Uint8Array(nlit + ndist);
        for (let i = 0; i < nlit + ndist;) {
          while (bc <= 22 && pos < n) { bb |= src[pos++] << bc; bc += 8; }
          const e = ctab[bb & cmask], len = e & 15;
          if (len === 0 || len > bc) throw new Error("bad Huffman code in pixel data");
          bb >>>= len; bc -= len;
          const sym = e >>> 4;
          if (sym < 16) { lens[i++] = sym; continue; }
          let rep, val = 0;
          if (sym === 16) {
            if (i === 0) throw new Error("bad code lengths in pixel data");
            if (bc < 2) throw new Error("pixel data cut short");
            val = lens[i - 1]; rep = 3 + (bb & 3); bb >>>= 2; bc -= 2;
          } else if (sym === 17) {
            if (bc < 3) throw new Error("pixel data cut short");
            rep = 3 + (bb & 7); bb >>>= 3; bc -= 3;
          } else {
            if (bc < 7) throw new Error("pixel data cut short");
            rep = 11 + (bb & 127); bb >>>= 7; bc -= 7;
          }
          if (i + rep > nlit + ndist) throw new Error("bad code lengths in pixel data");
          lens.fill(val, i, i + rep); i += rep;
        }
        lit = huffman(lens, nlit);
        dist = huffman(lens.subarray(nlit), ndist);
      } else {
        throw new Error("bad block type in pixel data");
      }
      st.pos = pos; st.bb = bb; st.bc = bc; st.o = o;
      inflateBlock(src, out, want, st, lit.tab, lit.mask, dist.tab, dist.mask);
      pos = st.pos; bb = st.bb; bc = st.bc; o = st.o;
    }
    if (o !== want) throw new Error("pixel data of " + o + " bytes, want " + want);
    return out;
  }

  // inflateBlock decodes one compressed block's symbols into out, from
  // and to the state st (a function of its own, so that the JIT makes this
  // loop fast alone, without waiting on the rest).
  function inflateBlock(src, out, want, st, ltab, lmask, dtab, dmask) {
    const n = src.length;
    let pos = st.pos, bb = st.bb, bc = st.bc, o = st.o;
    for (;;) {
      if (bc < 15) while (bc <= 22 && pos < n) { bb |= src[pos++] << bc; bc += 8; }
      const e = ltab[bb & lmask], len = e & 15;
      if (len === 0 || len > bc) throw new Error("bad Huffman code in pixel data");
      bb >>>= len; bc -= len;
      let sym = e >>> 4;
      if (sym < 256) {
        if (o >= want) throw new Error("pixel data too long");
        out[o++] = sym;
        continue;
      }
      if (sym === 256) break;
      sym -= 257;
      if (sym >= 29) throw new Error("bad length in pixel data");
      // Up to 5 extra bits, then a distance code of up to 15 and up to
      // 13 extra bits: refilled before each.
      let mlen = LBASE[sym];
      const lx = LEXT[sym];
      if (lx) {
        if (bc < lx) while (bc <= 22 && pos < n) { bb |= src[pos++] << bc; bc += 8; }
        if (bc < lx) throw new Error("pixel data cut short");
        mlen += bb & ((1 << lx) - 1); bb >>>= lx; bc -= lx;
      }
      if (bc < 15) while (bc <= 22 && pos < n) { bb |= src[pos++] << bc; bc += 8; }
      const de = dtab[bb & dmask], dlen = de & 15;
      if (dlen === 0 || dlen > bc) throw new Error("bad Huffman code in pixel data");
      bb >>>= dlen; bc -= dlen;
      const ds = de >>> 4;
      if (ds >= 30) throw new Error("bad distance in pixel data");
      let d = DBASE[ds];
      const dx = DEXT[ds];
      if (dx) {
        if (bc < dx) while (bc <= 22 && pos < n) { bb |= src[pos++] << bc; bc += 8; }
        if (bc < dx) throw new Error("pixel data cut short");
        d += bb & ((1 << dx) - 1); bb >>>= dx; bc -= dx;
      }
      if (d > o || o + mlen > want) throw new Error("bad match in pixel data");
      if (mlen < 32 || d < mlen) {
        for (let s = o - d, end = o + mlen; o < end;) out[o++] = out[s++];
      } else {
        out.copyWithin(o, o - d, o - d + mlen);
        o += mlen;
      }
    }
    st.pos = pos; st.bb = bb; st.bc = bc; st.o = o;
  }

  // A reader over one unescaped record.
  class Body {
    constructor(b) { this.b = b; this.i = 0; }
    uvarint() {
      let v = 0, mul = 1;
      for (let n = 0; n < 10; n++) {
        if (this.i >= this.b.length) throw new Error("short record");
        const c = this.b[this.i++];
        v += (c & 0x7f) * mul;
        if (c < 0x80) return v;
        mul *= 128;
      }
      throw new Error("bad uvarint");
    }
    int() {
      const v = this.uvarint();
      if (v > MAX_SIDE * 4) throw new Error("number out of range");
      return v;
    }
    byte() {
      if (this.i >= this.b.length) throw new Error("short record");
      return this.b[this.i++];
    }
    rest() { const r = this.b.subarray(this.i); this.i = this.b.length; return r; }
  }

  // parseSegment splits a segment into records and checks them; pixels
  // stay compressed until drawn.
  function parseSegment(buf) {
    const src = new Uint8Array(buf);
    const recs = [];
    let start = 0;
    for (;;) {
      const nl = src.indexOf(0x0a, start);
      if (nl < 0) break; // a partial last line (live): ignored
      // Unescape.
      const line = src.subarray(start, nl);
      start = nl + 1;
      let raw = line;
      if (line.indexOf(0x1b) >= 0) {
        raw = new Uint8Array(line.length);
        let n = 0;
        for (let i = 0; i < line.length; i++) {
          let c = line[i];
          if (c === 0x1b) {
            const e = line[++i];
            if (e === 1) c = 0x0a;
            else if (e === 2) c = 0x1b;
            else throw new Error("bad escape in the recording");
          }
          raw[n++] = c;
        }
        raw = raw.subarray(0, n);
      }
      if (raw.length < 6) throw new Error("short record");
      const end = raw.length - 4;
      const sum = ((raw[end] << 24) | (raw[end + 1] << 16) | (raw[end + 2] << 8) | raw[end + 3]) >>> 0;
      if (crc32c(raw, 0, end) !== sum) throw new Error("record checksum mismatch");
      const p = new Body(raw.subarray(0, end));
      const rec = { type: String.fromCharCode(p.byte()), t: p.uvarint() / 1e6 };
      const pixels = (w, h, bpp) => {
        if (p.byte() !== (bpp === 4 ? 1 : 0)) throw new Error("unknown pixel encoding");
        rec.data = p.rest();
        rec.size = w * h * bpp;
      };
      switch (rec.type) {
        case "F":
        case "Z":
          rec.w = p.int(); rec.h = p.int();
          if (rec.w < 1 || rec.h < 1 || rec.w > MAX_SIDE || rec.h > MAX_SIDE || rec.w * rec.h > MAX_PIXELS) throw new Error("bad screen size");
          if (rec.type === "F") pixels(rec.w, rec.h, 3);
          break;
        case "R":
          rec.x = p.int(); rec.y = p.int(); rec.w = p.int(); rec.h = p.int();
          pixels(rec.w, rec.h, 3);
          break;
        case "C":
          rec.sx = p.int(); rec.sy = p.int(); rec.x = p.int(); rec.y = p.int(); rec.w = p.int(); rec.h = p.int();
          break;
        case "P":
          rec.x = p.int(); rec.y = p.int(); rec.buttons = p.byte();
          break;
        case "A":
          rec.hx = p.int(); rec.hy = p.int(); rec.w = p.int(); rec.h = p.int();
          if (rec.w > MAX_CURSOR || rec.h > MAX_CURSOR) throw new Error("cursor too large");
          pixels(rec.w, rec.h, 4);
          break;
        default:
          continue; // keys, clipboard, and what a later version adds: nothing to draw
      }
      recs.push(rec);
    }
    return recs;
  }

  // Screen is the desktop as records rebuild it (RGBA), the pointer and
  // the cursor's shape, mirroring internal/desktop's Player.
  class Screen {
    constructor(w, h) { this.reset(w, h); this.cursor = null; this.x = 0; this.y = 0; }
    // clear makes it a fresh w×h screen (black, no cursor), in the same
    // memory when the size is the same.
    clear(w, h) {
      if (w === this.w && h === this.h) {
        this.pix32.fill(LE ? 0xff000000 : 0x000000ff);
        this.dirty = { x0: 0, y0: 0, x1: w, y1: h };
      } else {
        this.reset(w, h);
      }
      this.cursor = null; this.x = 0; this.y = 0;
    }
    reset(w, h) {
      this.w = w; this.h = h;
      this.pix = new Uint8ClampedArray(w * h * 4);
      // Whole pixels at a time: 0xAABBGGRR in the platform's (little-endian) order.
      this.pix32 = new Uint32Array(this.pix.buffer);
      this.pix32.fill(LE ? 0xff000000 : 0x000000ff);
      this.resized = true;
      this.dirty = { x0: 0, y0: 0, x1: w, y1: h };
    }
    mark(x, y, w, h) {
      const d = this.dirty;
      if (!d) { this.dirty = { x0: x, y0: y, x1: x + w, y1: y + h }; return; }
      d.x0 = Math.min(d.x0, x); d.y0 = Math.min(d.y0, y);
      d.x1 = Math.max(d.x1, x + w); d.y1 = Math.max(d.y1, y + h);
    }
    inside(x, y, w, h) { return x >= 0 && y >= 0 && w >= 0 && h >= 0 && x + w <= this.w && y + h <= this.h; }
    apply(r) {
      switch (r.type) {
        case "F":
          if (r.w !== this.w || r.h !== this.h) this.reset(r.w, r.h);
          this.rgb(inflateSync(r.data, r.size, true), 0, 0, r.w, r.h);
          break;
        case "R":
          if (!this.inside(r.x, r.y, r.w, r.h)) throw new Error("region outside the screen");
          this.rgb(inflateSync(r.data, r.size, true), r.x, r.y, r.w, r.h);
          break;
        case "C": {
          if (!this.inside(r.x, r.y, r.w, r.h) || !this.inside(r.sx, r.sy, r.w, r.h)) throw new Error("copy outside the screen");
          const row = r.w * 4, W = this.w * 4;
          const copyRow = (y) => this.pix.copyWithin((r.y + y) * W + r.x * 4, (r.sy + y) * W + r.sx * 4, (r.sy + y) * W + r.sx * 4 + row);
          if (r.sy < r.y) for (let y = r.h - 1; y >= 0; y--) copyRow(y);
          else for (let y = 0; y < r.h; y++) copyRow(y);
          this.mark(r.x, r.y, r.w, r.h);
          break;
        }
        case "Z":
          this.reset(r.w, r.h);
          break;
        case "P":
          this.x = r.x; this.y = r.y;
          break;
        case "A":
          this.cursor = { w: r.w, h: r.h, hx: r.hx, hy: r.hy, px: inflateSync(r.data, r.size) };
          break;
      }
    }
    rgb(px, x, y, w, h) {
      const p32 = this.pix32, W = this.w;
      let i = 0;
      for (let yy = 0; yy < h; yy++) {
        let o = (y + yy) * W + x;
        const end = o + w;
        if (LE) for (; o < end; o++, i += 3) p32[o] = 0xff000000 | (px[i + 2] << 16) | (px[i + 1] << 8) | px[i];
        else for (; o < end; o++, i += 3) p32[o] = (px[i] << 24) | (px[i + 1] << 16) | (px[i + 2] << 8) | 0xff;
      }
      this.mark(x, y, w, h);
    }
  }

  function fmt(sec) {
    sec = Math.max(0, Math.floor(sec));
    const h = Math.floor(sec / 3600), m = Math.floor(sec / 60) % 60, s = sec % 60;
    const pad = (n) => String(n).padStart(2, "0");
    return h > 0 ? `${h}:${pad(m)}:${pad(s)}` : `${m}:${pad(s)}`;
  }

  function parseMoment(s) {
    if (!s) return NaN;
    const parts = s.split(":");
    if (parts.length > 3 || parts.some((p) => !/^\d+(\.\d+)?$/.test(p))) return NaN;
    return parts.reduce((acc, p) => acc * 60 + parseFloat(p), 0);
  }

  function setup(canvas) {
    const base = canvas.dataset.src;
    const ctx = canvas.getContext("2d", { alpha: false, willReadFrequently: true });
    const $ = (id) => document.getElementById(id);
    const playBtn = $("desk-play"), backBtn = $("desk-back"), restartBtn = $("desk-restart");
    const seekBar = $("desk-seek"), timeEl = $("desk-time"), speedSel = $("desk-speed"), status = $("desk-status");

    let index = null;         // {width, height, duration, keyframes: [[t, bytes]...]}
    let scr = null;           // Screen
    let seg = -1, recs = null, pos = 0; // the segment being played, its records, the next one to apply
    let t = 0;                // the moment on screen, seconds
    let playing = false, clockT = 0, clockWall = 0, speed = 1;
    let gen = 0;              // bumped by every seek: stale work stops
    let drawnCursor = null;   // the rectangle the cursor was drawn in
    const segs = new Map();   // segment number -> Promise of records (a few kept)

    function show(msg) { status.hidden = !msg; status.textContent = msg || ""; }

    // segment returns segment i's records (a promise), fetched once; a
    // failed fetch is tried again only when retry says so (a seek). One
    // fetched for the pointer over the progress bar (hover) displaces only
    // the one fetched so before, until a seek or playing uses it.
    function segment(i, retry, hover) {
      let p = segs.get(i);
      if (p && p.error && retry) p = null;
      if (!p) {
        p = fetch(base + "/seg/" + i, { credentials: "same-origin" })
          .then((r) => {
            if (!r.ok) throw new Error("segment " + i + ": HTTP " + r.status);
            return r.arrayBuffer();
          })
          .then(parseSegment);
        p.then((list) => { p.ready = list; }, (e) => { p.error = e; });
        if (hover) {
          for (const [k, q] of segs) if (q.hover) segs.delete(k);
          p.hover = true;
        } else {
          // Keep the segments around the one being played.
          for (const k of segs.keys()) if (k < i - 1 || k > i + 2) segs.delete(k);
        }
        segs.set(i, p);
      }
      if (!hover) p.hover = false;
      return p;
    }

    // While the pointer moves over the progress bar, the segment under it
    // is fetched, so that a click there finds it here: one fetch at a
    // time, then the one for where the pointer is by then.
    let hoverAt = -1, hoverBusy = false;
    function hoverFetch() {
      if (hoverBusy || hoverAt < 0) return;
      const i = keyframeBefore(hoverAt);
      hoverAt = -1;
      if (segs.has(i)) return;
      hoverBusy = true;
      segment(i, false, true).catch(() => {}).finally(() => { hoverBusy = false; hoverFetch(); });
    }

    // ahead fetches segment i ahead of time, if there is one.
    function ahead(i) {
      if (i < index.keyframes.length) segment(i).catch(() => {});
    }

    // keyframeBefore returns the last keyframe at or before sec (the first
    // one when sec is before them all).
    function keyframeBefore(sec) {
      const kf = index.keyframes;
      let lo = 0, hi = kf.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (kf[mid][0] <= sec) lo = mid; else hi = mid - 1;
      }
      return lo;
    }

    function paint() {
      if (!scr) return;
      if (canvas.width !== scr.w || canvas.height !== scr.h) {
        canvas.width = scr.w; canvas.height = scr.h;
        scr.dirty = { x0: 0, y0: 0, x1: scr.w, y1: scr.h };
        drawnCursor = null;
      }
      const img = new ImageData(scr.pix, scr.w, scr.h);
      const put = (x0, y0, x1, y1) => {
        x0 = Math.max(0, x0); y0 = Math.max(0, y0); x1 = Math.min(scr.w, x1); y1 = Math.min(scr.h, y1);
        if (x1 > x0 && y1 > y0) ctx.putImageData(img, 0, 0, x0, y0, x1 - x0, y1 - y0);
      };
      if (scr.dirty) put(scr.dirty.x0, scr.dirty.y0, scr.dirty.x1, scr.dirty.y1);
      if (drawnCursor) put(drawnCursor.x0, drawnCursor.y0, drawnCursor.x1, drawnCursor.y1);
      scr.dirty = null;
      drawnCursor = null;
      const c = scr.cursor;
      if (!c || c.w === 0 || c.h === 0) return;
      // The cursor over the screen, blended as reel export does.
      const x0 = scr.x - c.hx, y0 = scr.y - c.hy;
      const out = new ImageData(c.w, c.h);
      const o = out.data, s = scr.pix, W = scr.w;
      for (let cy = 0; cy < c.h; cy++) {
        const y = y0 + cy;
        for (let cx = 0; cx < c.w; cx++) {
          const x = x0 + cx, oi = (cy * c.w + cx) * 4, ci = oi;
          if (y < 0 || y >= scr.h || x < 0 || x >= W) continue;
          const si = (y * W + x) * 4, a = c.px[ci + 3];
          for (let k = 0; k < 3; k++) {
            o[oi + k] = a === 255 ? c.px[ci + k] : a === 0 ? s[si + k] : Math.floor((c.px[ci + k] * a + s[si + k] * (255 - a)) / 255);
          }
          o[oi + 3] = 255;
        }
      }
      const cx0 = Math.max(0, x0), cy0 = Math.max(0, y0), cx1 = Math.min(W, x0 + c.w), cy1 = Math.min(scr.h, y0 + c.h);
      if (cx1 > cx0 && cy1 > cy0) {
        ctx.putImageData(out, x0, y0, cx0 - x0, cy0 - y0, cx1 - cx0, cy1 - cy0);
        drawnCursor = { x0: cx0, y0: cy0, x1: cx1, y1: cy1 };
      }
    }

    function showTime() {
      timeEl.textContent = fmt(t) + " / " + fmt(index.duration);
      if (document.activeElement !== seekBar || !seekBar.matches(":active")) seekBar.value = String(t);
      canvas.dataset.t = t.toFixed(6);
    }

    // seek shows the screen at sec: from the keyframe before it.
    async function seek(sec) {
      const my = ++gen;
      sec = Math.min(Math.max(0, sec), index.duration);
      const i = keyframeBefore(sec);
      canvas.dataset.seeking = "1";
      let list;
      try {
        list = await segment(i, true);
      } catch (e) {
        if (my === gen) { show("Cannot load this part of the recording: " + e.message); stop(); }
        throw e;
      }
      if (my !== gen) return false;
      if (playing) ahead(i + 1);
      // A fresh screen, as reel export starts one: nothing from before the
      // keyframe (not even the cursor) shows.
      if (scr) scr.clear(index.width, index.height);
      else scr = new Screen(index.width, index.height);
      seg = i; recs = list; pos = 0;
      // The keyframe always applies, even when sec comes before it.
      try {
        while (pos < recs.length && (pos === 0 || recs[pos].t <= sec)) scr.apply(recs[pos++]);
      } catch (e) {
        show("Cannot show this part of the recording: " + e.message);
        throw e;
      }
      t = sec;
      clockT = t; clockWall = performance.now();
      paint();
      showTime();
      canvas.dataset.seeking = "";
      canvas.dataset.seeks = String((canvas.dataset.seeks | 0) + 1);
      return true;
    }

    // advance applies records up to target; false while the next segment
    // is still on its way.
    function advance(target) {
      for (;;) {
        while (pos < recs.length && recs[pos].t <= target) scr.apply(recs[pos++]);
        if (pos < recs.length || seg + 1 >= index.keyframes.length) return true;
        // The next segment: ready, or wait for it.
        const next = seg + 1;
        const p = segment(next);
        if (p.error) throw p.error;
        if (!p.ready) return false;
        seg = next; recs = p.ready; pos = 0;
        ahead(next + 1);
      }
    }

    function frame() {
      if (!playing) return;
      const now = performance.now();
      let target = clockT + ((now - clockWall) / 1000) * speed;
      if (target >= index.duration) target = index.duration;
      let ok;
      try {
        ok = advance(target);
      } catch (e) {
        stop();
        show("Cannot show this part of the recording: " + e.message);
        return;
      }
      if (!ok) {
        clockT = t; clockWall = now; // waiting for data: the clock waits too
      } else {
        t = target;
      }
      paint();
      showTime();
      if (t >= index.duration && pos >= recs.length && seg + 1 >= index.keyframes.length) {
        stop();
        canvas.dataset.ended = "1";
        playBtn.textContent = "Replay";
        return;
      }
      requestAnimationFrame(frame);
    }

    function play() {
      if (playing) return;
      if (canvas.dataset.ended === "1" || t >= index.duration) {
        // At the end: play again from the start.
        canvas.dataset.ended = "";
        seek(0).then((ok) => { if (ok) play(); }, () => {});
        return;
      }
      playing = true;
      ahead(seg + 1);
      clockT = t; clockWall = performance.now();
      playBtn.textContent = "Pause";
      canvas.dataset.playing = "1";
      requestAnimationFrame(frame);
    }

    function stop() {
      playing = false;
      playBtn.textContent = "Play";
      canvas.dataset.playing = "";
    }

    function seekAndKeep(sec) {
      const was = playing;
      stop();
      canvas.dataset.ended = "";
      return seek(sec).then((ok) => { if (ok && was) play(); return ok; });
    }

    playBtn.addEventListener("click", () => (playing ? stop() : play()));
    backBtn.addEventListener("click", () => seekAndKeep(t - 10).catch(() => {}));
    restartBtn.addEventListener("click", () => seekAndKeep(0).catch(() => {}));
    seekBar.addEventListener("input", () => {
      seekAndKeep(parseFloat(seekBar.value)).then((ok) => {
        // The frame is on screen from the next rendering on.
        if (ok) requestAnimationFrame(() => { canvas.dataset.shown = String(performance.now()); });
      }, () => {});
    });
    seekBar.addEventListener("pointermove", (e) => {
      if (!index || seekBar.disabled) return;
      // The moment under the pointer, as the range input maps it (its
      // thumb, 16 px in Chromium, travels the width less its own).
      const r = seekBar.getBoundingClientRect(), thumb = 16;
      const f = (e.clientX - r.left - thumb / 2) / Math.max(1, r.width - thumb);
      hoverAt = Math.min(1, Math.max(0, f)) * index.duration;
      hoverFetch();
    });
    speedSel.addEventListener("change", () => {
      clockT = t; clockWall = performance.now();
      speed = parseFloat(speedSel.value) || 1;
    });
    window.addEventListener("hashchange", () => {
      const m = /^#t=([0-9:.]+)$/.exec(location.hash);
      const sec = m ? parseMoment(m[1]) : NaN;
      if (!isNaN(sec)) seekAndKeep(sec).catch(() => {});
    });

    // The page's API, for tests and the seek benchmark.
    window.reelDesktop = {
      seek: (sec) => seekAndKeep(sec),
      play, pause: stop,
      state: () => ({ t, playing, seg, duration: index ? index.duration : 0, w: scr ? scr.w : 0, h: scr ? scr.h : 0 }),
    };

    fetch(base + "/index.json", { credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : r.text().then((s) => { throw new Error(s.trim() || "HTTP " + r.status); })))
      .then((ix) => {
        index = ix;
        if (!ix.keyframes || ix.keyframes.length === 0) throw new Error("the recording has no picture yet");
        if (ix.problem) show(ix.problem);
        seekBar.max = String(ix.duration);
        speed = parseFloat(speedSel.value) || 1;
        for (const b of [playBtn, backBtn, restartBtn, seekBar]) b.disabled = false;
        const m = /^#t=([0-9:.]+)$/.exec(location.hash);
        const at = m ? parseMoment(m[1]) : 0;
        return seek(isNaN(at) ? 0 : at);
      })
      .then(() => { canvas.dataset.ready = "1"; })
      .catch((e) => show("This recording cannot be played: " + e.message));
  }

  document.addEventListener("DOMContentLoaded", () => {
    const c = document.getElementById("desktop");
    if (c) setup(c);
  });
})();
