// SHA-256 (FIPS 180-4) whose running state can be saved and restored.
//
// node:crypto cannot export a hash's intermediate state, but a resumed
// migration must continue the whole-stream checksum exactly where the last
// committed chunk left it. The state is the eight chaining words, the bytes of
// the unfinished 64-byte block, and the count of bytes hashed so far; it is
// stored in the same commit as the chunk it follows.
import assert from 'node:assert/strict';

const roundConstants = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
  0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
  0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
  0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
  0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
  0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
  0xc67178f2,
]);
const initialWords = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

/** The saved form of a running hash: JSON-safe, restored by `Sha256.restore`. */
export interface Sha256State {
  /** The eight chaining words, as 64 hex digits. */
  words: string;
  /** Bytes of the unfinished block (fewer than 64), base64. */
  pending: string;
  /** Bytes hashed so far. */
  length: number;
}

export class Sha256 {
  private readonly words = new Int32Array(initialWords);
  private readonly block = new Uint8Array(64);
  private blockBytes = 0;
  private length = 0;
  private readonly schedule = new Int32Array(64);

  static restore(state: Sha256State): Sha256 {
    const hash = new Sha256();
    const words = Buffer.from(state.words, 'hex');
    const pending = Buffer.from(state.pending, 'base64');
    assert.equal(words.length, 32, 'saved SHA-256 state: 8 words');
    assert.ok(pending.length < 64, 'saved SHA-256 state: a partial block');
    assert.ok(Number.isSafeInteger(state.length) && state.length % 64 === pending.length, 'saved SHA-256 length');
    for (let i = 0; i < 8; i++) hash.words[i] = words.readInt32BE(i * 4);
    hash.block.set(pending);
    hash.blockBytes = pending.length;
    hash.length = state.length;
    return hash;
  }

  save(): Sha256State {
    const words = Buffer.alloc(32);
    for (let i = 0; i < 8; i++) words.writeInt32BE(this.words[i]!, i * 4);
    return {
      words: words.toString('hex'),
      pending: Buffer.from(this.block.subarray(0, this.blockBytes)).toString('base64'),
      length: this.length,
    };
  }

  update(data: Uint8Array): this {
    let offset = 0;
    this.length += data.length;
    if (this.blockBytes > 0) {
      const take = Math.min(64 - this.blockBytes, data.length);
      this.block.set(data.subarray(0, take), this.blockBytes);
      this.blockBytes += take;
      offset = take;
      if (this.blockBytes < 64) return this;
      this.compress(this.block, 0);
      this.blockBytes = 0;
    }
    for (; offset + 64 <= data.length; offset += 64) this.compress(data, offset);
    this.block.set(data.subarray(offset));
    this.blockBytes = data.length - offset;
    return this;
  }

  /** The digest of everything so far, as hex; the running state is left as it was. */
  digestHex(): string {
    const copy = Sha256.restore(this.save());
    const bits = copy.length * 8;
    const padBytes = (copy.blockBytes < 56 ? 56 : 120) - copy.blockBytes;
    const tail = Buffer.alloc(padBytes + 8);
    tail[0] = 0x80;
    tail.writeUInt32BE(Math.floor(bits / 2 ** 32), padBytes);
    tail.writeUInt32BE(bits >>> 0, padBytes + 4);
    copy.update(tail);
    assert.equal(copy.blockBytes, 0);
    const out = Buffer.alloc(32);
    for (let i = 0; i < 8; i++) out.writeInt32BE(copy.words[i]!, i * 4);
    return out.toString('hex');
  }

  private compress(data: Uint8Array, offset: number): void {
    const w = this.schedule;
    for (let i = 0; i < 16; i++) {
      const j = offset + i * 4;
      w[i] = (data[j]! << 24) | (data[j + 1]! << 16) | (data[j + 2]! << 8) | data[j + 3]!;
    }
    for (let i = 16; i < 64; i++) {
      const a = w[i - 15]!;
      const b = w[i - 2]!;
      const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
      const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
      w[i] = (w[i - 16]! + s0 + w[i - 7]! + s1) | 0;
    }
    const h = this.words;
    let a = h[0]!;
    let b = h[1]!;
    let c = h[2]!;
    let d = h[3]!;
    let e = h[4]!;
    let f = h[5]!;
    let g = h[6]!;
    let k = h[7]!;
    for (let i = 0; i < 64; i++) {
      const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (k + s1 + ((e & f) ^ (~e & g)) + roundConstants[i]! + w[i]!) | 0;
      const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (s0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      k = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    h[0] = (h[0]! + a) | 0;
    h[1] = (h[1]! + b) | 0;
    h[2] = (h[2]! + c) | 0;
    h[3] = (h[3]! + d) | 0;
    h[4] = (h[4]! + e) | 0;
    h[5] = (h[5]! + f) | 0;
    h[6] = (h[6]! + g) | 0;
    h[7] = (h[7]! + k) | 0;
  }
}
