// Checks one ticket's proof against a published day's files, trusting nothing the server
// computed: every hash, signature, seed, roll and verdict is recomputed here from the signed
// files and the ticket's leaf. No DOM: it returns a list of results the page (or a test) reads.
//
// A result is { check, ok, why }: ok is true (passed), false (failed) or null (could not be
// checked because something it needs is missing or failed), and why is { zh, en }: plain words
// for a person, in Chinese and English.

import { bytesOf, equalBytes, fromHex, sha256, sha256Hex, textOf, toHex, verifyEd25519 } from './bytes.js';
import { leafHash, rootFromInclusion } from './merkle.js';
import { POOL_ROLL, SPILL_ROLL, roll, rollHex } from './chacha20.js';
import { parseDraw, parseEntrant, parsePools, parseSeal, parseSpill, parseStock, seedText } from './formats.js';

/** The files a proof is checked against, in the order the page downloads them. */
export const FILES = ['authority.pub', 'seal.txt', 'seal.sig', 'stock.csv', 'draw.txt', 'draw.sig', 'pools.csv', 'spill.csv'];

/** The checks, in the order they are reported. */
export const CHECKS = ['key', 'seal_signature', 'seal_text', 'leaf', 'inclusion', 'stock',
  'draw_signature', 'draw_text', 'reveals', 'seed', 'cutoffs', 'rolls', 'outcome'];

const t = (zh, en) => ({ zh, en });
const short = (hex) => `${hex.slice(0, 16)}…`;

/** Why a check could not be run: something it needs is missing or failed. */
class Unchecked extends Error {
  constructor(why) { super(why.en); this.why = why; }
}
/** Why a check failed. */
class Failed extends Error {
  constructor(why) { super(why.en); this.why = why; }
}
const fail = (zh, en) => { throw new Failed(t(zh, en)); };
const needs = (value, zh, en) => {
  if (value === null || value === undefined) throw new Unchecked(t(zh, en));
  return value;
};

/** A downloaded file's bytes, or Unchecked naming why it is not there. */
function file(files, name) {
  const f = files[name];
  if (f instanceof Uint8Array) return f;
  const reason = f && f.error ? f.error : 'not downloaded';
  throw new Failed(t(`无法获取 ${name}（${reason}）`, `${name} could not be downloaded (${reason})`));
}

/** 32 bytes from "64 hex + LF", 64 bytes from "128 hex + LF" (authority.pub, *.sig). */
function hexLine(name, bytes, n) {
  let text;
  try { text = textOf(bytes); } catch (_) { text = ''; }
  if (!new RegExp(`^[0-9a-f]{${2 * n}}\\n$`).test(text)) {
    fail(`${name} 应为 ${2 * n} 个十六进制字符加换行`, `${name} is not ${2 * n} hex characters and LF`);
  }
  return fromHex(text.slice(0, 2 * n));
}

function formatError(name, e) {
  return new Failed(t(`${name} 格式不符：${e.message}`, `${name} breaks the format: ${e.message}`));
}

/**
 * Roll against cutoff (SPEC §8): did this entrant have to win, and in which roll?
 * `pool` is its pools.csv row, `spill` its group's spill.csv row or null (no leftover packs).
 * Rolls and cutoffs compare as 64-bit numbers. A roll equal to the cutoff is the last winner's:
 * two entrants sharing a 64-bit roll (then ticket order decides) is not a case worth a branch.
 * Returns { won, roll, why } or throws Failed when the row cannot come from a real draw.
 */
export function expectedOutcome({ flexible, roll1, roll2, pool, spill }) {
  let lost1;
  if (pool.cutoff !== '-') {
    const cutoff = BigInt(`0x${pool.cutoff}`);
    if (roll1 <= cutoff) {
      return { won: true, roll: 1, why: t(`第一轮随机数 ${rollHex(roll1)} ≤ 本药店中签线 ${pool.cutoff}，必定中签`,
        `roll one ${rollHex(roll1)} ≤ the pharmacy's cutoff ${pool.cutoff}: it had to win`) };
    }
    lost1 = t(`第一轮随机数 ${rollHex(roll1)} > 本药店中签线 ${pool.cutoff}`, `roll one ${rollHex(roll1)} > the pharmacy's cutoff ${pool.cutoff}`);
  } else if (pool.packs === 0n) {
    lost1 = t('本药店当天没有库存', 'the pharmacy had no packs that day');
  } else if (pool.entrants <= pool.packs) {
    return { won: true, roll: 1, why: t(`本药店 ${pool.entrants} 人预约、${pool.packs} 包库存，人人中签`,
      `${pool.entrants} entrants for ${pool.packs} packs at the pharmacy: everyone won`) };
  } else {
    fail(`pools.csv 的这一行自相矛盾（无中签线但 ${pool.entrants} 人多于 ${pool.packs} 包）`,
      `the pools.csv row contradicts itself (no cutoff, yet ${pool.entrants} entrants for ${pool.packs} packs)`);
  }
  if (!flexible) {
    return { won: false, roll: null, why: t(`${lost1.zh}；未选服从分配，不参加第二轮，未中签`, `${lost1.en}; not flexible, so no roll two: it had to lose`) };
  }
  if (!spill) {
    return { won: false, roll: null, why: t(`${lost1.zh}；本区此类口罩没有余量，第二轮无人中签，未中签`,
      `${lost1.en}; no packs were left over in the district for this mask type, so roll two had nothing to give: it had to lose`) };
  }
  if (spill.cutoff === '-') {
    return { won: false, roll: null, why: t(`${lost1.zh}；本区第二轮无人中签`, `${lost1.en}; nobody won roll two in the district: it had to lose`) };
  }
  const cutoff2 = BigInt(`0x${spill.cutoff}`);
  if (roll2 <= cutoff2) {
    return { won: true, roll: 2, why: t(`${lost1.zh}；第二轮随机数 ${rollHex(roll2)} ≤ 本区调剂中签线 ${spill.cutoff}，必定中签`,
      `${lost1.en}; roll two ${rollHex(roll2)} ≤ the district's cutoff ${spill.cutoff}: it had to win`) };
  }
  return { won: false, roll: null, why: t(`${lost1.zh}；第二轮随机数 ${rollHex(roll2)} > 本区调剂中签线 ${spill.cutoff}，未中签`,
    `${lost1.en}; roll two ${rollHex(roll2)} > the district's cutoff ${spill.cutoff}: it had to lose`) };
}

/**
 * Runs every check for `ticketId` on the draw of `date`.
 * `proof` is the server's TicketProof JSON (lottery/src/proof.rs) or null; `files` maps each name
 * of FILES to its bytes (Uint8Array) or to { error } when it could not be downloaded.
 * Returns { results, facts, passed }: results in CHECKS order; facts are the values computed
 * here (never the proof's) for the page to show.
 */
export async function verifyTicket({ ticketId, date, proof, files }) {
  const facts = { ticketId, date };
  const results = [];
  const run = async (check, body) => {
    try {
      results.push({ check, ok: true, why: await body() });
    } catch (e) {
      if (e instanceof Failed) results.push({ check, ok: false, why: e.why });
      else if (e instanceof Unchecked) results.push({ check, ok: null, why: e.why });
      else results.push({ check, ok: false, why: t(`意外错误：${e.message}`, `unexpected error: ${e.message}`) });
    }
  };
  const claims = proof && typeof proof === 'object' ? proof : null;
  let key = null, seal = null, entrant = null, stockRow = null, draw = null, seed = null, pool = null, spill = null;
  let cutoffsTrusted = false, seedTrusted = false, revealsTrusted = false;

  await run('key', async () => {
    key = hexLine('authority.pub', file(files, 'authority.pub'), 32);
    facts.key = toHex(key);
    return t(`签名用机构公钥 ${facts.key} 核验；请与机构公布的公钥比对`,
      `signatures are checked with the authority's key ${facts.key}; compare it with the key the authority publishes`);
  });

  let sealBytes = null;
  try { sealBytes = file(files, 'seal.txt'); facts.sealId = await sha256Hex(sealBytes); } catch (_) { /* reported below */ }

  await run('seal_signature', async () => {
    const bytes = file(files, 'seal.txt');
    const sig = hexLine('seal.sig', file(files, 'seal.sig'), 64);
    needs(key, '缺少可用的公钥', 'there is no usable key');
    if (!await verifyEd25519(key, sig, bytes)) {
      fail('seal.sig 不是机构公钥对 seal.txt 的签名：封存内容可能被改动', 'seal.sig is not the authority\'s signature of seal.txt: the sealed contents may have been changed');
    }
    return t('seal.txt 由机构私钥签名，封存后未被改动', 'seal.txt carries the authority\'s signature: it is as sealed');
  });

  await run('seal_text', async () => {
    const bytes = file(files, 'seal.txt');
    try { seal = parseSeal(bytes); } catch (e) { throw formatError('seal.txt', e); }
    if (seal.drawDate !== date) {
      const d = seal.drawDate;
      seal = null;
      fail(`seal.txt 是 ${d} 的封存，不是 ${date}`, `seal.txt seals the draw of ${d}, not ${date}`);
    }
    facts.cutoff = seal.cutoff;
    facts.entrants = seal.entrants;
    return t(`${date} 的名单于 ${seal.cutoff} 封存，共 ${seal.entrants} 人，封存编号 ${short(facts.sealId)}`,
      `the list for ${date} was sealed at ${seal.cutoff} with ${seal.entrants} entrants; seal id ${short(facts.sealId)}`);
  });

  await run('leaf', async () => {
    needs(claims, '没有拿到证明', 'no proof was received');
    if (typeof claims.leaf !== 'string') fail('证明中没有名单行', 'the proof has no leaf line');
    try { entrant = parseEntrant(claims.leaf); } catch (e) { fail(`名单行格式不符：${e.reason}`, `the leaf line breaks the format: ${e.reason}`); }
    if (entrant.ticketId !== ticketId) {
      const other = entrant.ticketId;
      entrant = null;
      fail(`名单行属于 ${other}，不是 ${ticketId}`, `the leaf line is ticket ${other}, not ${ticketId}`);
    }
    const { leaf_index: index, tree_size: size } = claims;
    if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) {
      entrant = null;
      fail('证明中的行号或人数无效', 'the proof\'s leaf index or tree size is not valid');
    }
    facts.leaf = claims.leaf;
    facts.leafIndex = index;
    Object.assign(facts, { pharmacyId: entrant.pharmacyId, productId: entrant.productId, flexible: entrant.flexible });
    needs(seal, '封存内容未通过，无法核对人数', 'seal.txt did not pass, so the number of entrants is unknown');
    if (BigInt(size) !== seal.entrants) {
      entrant = null;
      fail(`证明说名单有 ${size} 人，封存的是 ${seal.entrants} 人`, `the proof says ${size} entrants; the seal says ${seal.entrants}`);
    }
    return t(`您的预约是名单第 ${index} 行（从 0 起）：药店 ${entrant.pharmacyId}，${entrant.productId}，${entrant.flexible ? '服从分配' : '不服从分配'}`,
      `your ticket is line ${index} (from 0) of the list: pharmacy ${entrant.pharmacyId}, ${entrant.productId}, ${entrant.flexible ? 'flexible' : 'not flexible'}`);
  });

  await run('inclusion', async () => {
    needs(entrant, '名单行未通过', 'the leaf line did not pass');
    needs(seal, '封存内容未通过', 'seal.txt did not pass');
    if (!Array.isArray(claims.audit_path) || !claims.audit_path.every((h) => typeof h === 'string' && /^[0-9a-f]{64}$/.test(h))) {
      fail('审计路径不是一组 64 位十六进制哈希', 'the audit path is not a list of 64-hex hashes');
    }
    const leaf = await leafHash(bytesOf(claims.leaf));
    facts.leafHash = toHex(leaf);
    let root;
    try {
      root = await rootFromInclusion(claims.leaf_index, claims.tree_size, leaf, claims.audit_path.map(fromHex));
    } catch (e) {
      fail(`审计路径无效：${e.message}`, `the audit path is not valid: ${e.message}`);
    }
    if (!equalBytes(root, fromHex(seal.entrantsRoot))) {
      fail(`行哈希沿审计路径得到 ${short(toHex(root))}，不是封存的默克尔根 ${short(seal.entrantsRoot)}：无法证明您在封存名单中`,
        `the leaf hash and audit path give ${short(toHex(root))}, not the sealed entrants_root ${short(seal.entrantsRoot)}: this does not prove you were in the sealed list`);
    }
    return t(`行哈希 ${short(facts.leafHash)} 经 ${claims.audit_path.length} 步哈希得到封存的默克尔根 ${short(seal.entrantsRoot)}：您在封存名单中`,
      `the leaf hash ${short(facts.leafHash)} hashed up ${claims.audit_path.length} steps gives the sealed entrants_root ${short(seal.entrantsRoot)}: you were in the sealed list`);
  });

  await run('stock', async () => {
    const bytes = file(files, 'stock.csv');
    needs(seal, '封存内容未通过', 'seal.txt did not pass');
    const digest = await sha256Hex(bytes);
    if (digest !== seal.stockSha256) {
      fail(`stock.csv 的 SHA-256 为 ${short(digest)}，封存的是 ${short(seal.stockSha256)}：库存表被改动`,
        `stock.csv hashes to ${short(digest)}, the seal says ${short(seal.stockSha256)}: the stock list was changed`);
    }
    let rows;
    try { rows = parseStock(bytes); } catch (e) { throw formatError('stock.csv', e); }
    needs(entrant, '名单行未通过', 'the leaf line did not pass');
    stockRow = rows.find((r) => r.pharmacy_id === entrant.pharmacyId && r.product_id === entrant.productId);
    if (!stockRow) fail(`库存表中没有 ${entrant.pharmacyId} 的 ${entrant.productId}`, `the stock list has no ${entrant.productId} at ${entrant.pharmacyId}`);
    facts.stock = rows;
    facts.districtId = stockRow.district_id;
    facts.packs = stockRow.packs;
    if (claims && claims.district_id != null && claims.district_id !== stockRow.district_id) {
      fail(`服务器说区为 ${claims.district_id}，封存的库存表为 ${stockRow.district_id}`, `the server says district ${claims.district_id}; the sealed stock list says ${stockRow.district_id}`);
    }
    return t(`库存表与封存一致：${entrant.pharmacyId} 在 ${stockRow.district_id} 区，${entrant.productId} 共 ${stockRow.packs} 包`,
      `the stock list is the sealed one: ${entrant.pharmacyId} is in district ${stockRow.district_id} with ${stockRow.packs} packs of ${entrant.productId}`);
  });

  await run('draw_signature', async () => {
    const bytes = file(files, 'draw.txt');
    const sig = hexLine('draw.sig', file(files, 'draw.sig'), 64);
    needs(key, '缺少可用的公钥', 'there is no usable key');
    if (!await verifyEd25519(key, sig, bytes)) {
      fail('draw.sig 不是机构公钥对 draw.txt 的签名：摇号记录可能被改动', 'draw.sig is not the authority\'s signature of draw.txt: the draw record may have been changed');
    }
    return t('draw.txt 由机构私钥签名，未被改动', 'draw.txt carries the authority\'s signature: it is as published');
  });

  await run('draw_text', async () => {
    const bytes = file(files, 'draw.txt');
    try { draw = parseDraw(bytes); } catch (e) { throw formatError('draw.txt', e); }
    needs(facts.sealId, '没有 seal.txt', 'seal.txt is missing');
    if (draw.seal !== facts.sealId) {
      fail(`draw.txt 指向封存 ${short(draw.seal)}，而 seal.txt 的编号是 ${short(facts.sealId)}：摇号不是对这份名单做的`,
        `draw.txt names seal ${short(draw.seal)} but seal.txt's id is ${short(facts.sealId)}: the draw was not made on this list`);
    }
    return t(`摇号记录指向本封存（SHA-256(seal.txt) = ${short(facts.sealId)}），共 ${draw.winners} 人中签`,
      `the draw record names this seal (SHA-256(seal.txt) = ${short(facts.sealId)}); ${draw.winners} winners`);
  });

  await run('reveals', async () => {
    needs(seal, '封存内容未通过', 'seal.txt did not pass');
    needs(draw, '摇号记录未通过', 'draw.txt did not pass');
    if (draw.reveals.length !== seal.commits.length) {
      fail(`封存时 ${seal.commits.length} 方承诺了秘密，摇号时公开了 ${draw.reveals.length} 个`,
        `${seal.commits.length} parties committed to a secret at the seal; ${draw.reveals.length} secrets were revealed`);
    }
    for (let i = 0; i < draw.reveals.length; i += 1) {
      const r = draw.reveals[i], c = seal.commits[i];
      if (r.party !== c.party) fail(`第 ${i + 1} 个公开方是 ${r.party}，封存时是 ${c.party}`, `reveal ${i + 1} is by ${r.party}; the seal's commitment ${i + 1} is by ${c.party}`);
      if (toHex(await sha256(fromHex(r.secret))) !== c.digest) {
        fail(`${r.party} 公开的秘密与封存时的承诺不符：种子可能在封存后被挑选`,
          `the secret ${r.party} revealed does not hash to what they committed at the seal: the seed may have been chosen after the seal`);
      }
    }
    revealsTrusted = true;
    const parties = draw.reveals.map((r) => r.party).join(', ');
    return t(`${parties} 公开的秘密与封存前的承诺相符：名单封存时无人知道种子`,
      `the secrets revealed by ${parties} hash to the commitments made before the seal: nobody knew the seed when the list was sealed`);
  });

  await run('seed', async () => {
    needs(draw, '摇号记录未通过', 'draw.txt did not pass');
    needs(facts.sealId, '没有 seal.txt', 'seal.txt is missing');
    const text = seedText(facts.sealId, draw.reveals, draw.material);
    seed = await sha256(bytesOf(text));
    facts.seedText = text;
    facts.seed = toHex(seed);
    facts.material = draw.material;
    if (facts.seed !== draw.seed) {
      fail(`由封存编号、公开的秘密和现场材料算出的种子是 ${short(facts.seed)}，draw.txt 写的是 ${short(draw.seed)}`,
        `the seal id, the revealed secrets and the material give the seed ${short(facts.seed)}; draw.txt says ${short(draw.seed)}`);
    }
    seedTrusted = true;
    return t(`种子 = SHA-256(封存编号、公开的秘密、现场材料“${draw.material}”) = ${short(facts.seed)}，与 draw.txt 相同`,
      `seed = SHA-256(seal id, revealed secrets, live material "${draw.material}") = ${short(facts.seed)}, as in draw.txt`);
  });

  await run('cutoffs', async () => {
    needs(draw, '摇号记录未通过', 'draw.txt did not pass');
    const poolsBytes = file(files, 'pools.csv'), spillBytes = file(files, 'spill.csv');
    const [p, s] = await Promise.all([sha256Hex(poolsBytes), sha256Hex(spillBytes)]);
    if (p !== draw.poolsSha256) {
      fail(`pools.csv 的 SHA-256 为 ${short(p)}，draw.txt 写的是 ${short(draw.poolsSha256)}：中签线被改动`,
        `pools.csv hashes to ${short(p)}, draw.txt says ${short(draw.poolsSha256)}: the cutoffs were changed`);
    }
    if (s !== draw.spillSha256) {
      fail(`spill.csv 的 SHA-256 为 ${short(s)}，draw.txt 写的是 ${short(draw.spillSha256)}：调剂中签线被改动`,
        `spill.csv hashes to ${short(s)}, draw.txt says ${short(draw.spillSha256)}: the district cutoffs were changed`);
    }
    let pools, spills;
    try { pools = parsePools(poolsBytes); } catch (e) { throw formatError('pools.csv', e); }
    try { spills = parseSpill(spillBytes); } catch (e) { throw formatError('spill.csv', e); }
    needs(entrant, '名单行未通过', 'the leaf line did not pass');
    needs(stockRow, '库存表未通过', 'stock.csv did not pass');
    pool = pools.find((r) => r.pharmacy_id === entrant.pharmacyId && r.product_id === entrant.productId);
    if (!pool) fail('pools.csv 中没有您的药店和口罩', 'pools.csv has no line for your pharmacy and mask type');
    if (pool.packs !== stockRow.packs) fail(`pools.csv 写 ${pool.packs} 包，库存表是 ${stockRow.packs} 包`, `pools.csv says ${pool.packs} packs; the stock list says ${stockRow.packs}`);
    spill = spills.find((r) => r.district_id === stockRow.district_id && r.product_id === entrant.productId) || null;
    facts.poolCutoff = pool.cutoff;
    facts.spillCutoff = spill ? spill.cutoff : null;
    if (claims && claims.pool_cutoff != null && claims.pool_cutoff !== pool.cutoff) {
      fail(`服务器说本药店中签线为 ${claims.pool_cutoff}，签名的 pools.csv 是 ${pool.cutoff}`, `the server says the pharmacy's cutoff is ${claims.pool_cutoff}; the signed pools.csv says ${pool.cutoff}`);
    }
    if (entrant.flexible && claims && claims.spill_cutoff !== undefined && (claims.spill_cutoff ?? null) !== facts.spillCutoff) {
      fail(`服务器说本区调剂中签线为 ${claims.spill_cutoff ?? '无'}，签名的 spill.csv 是 ${facts.spillCutoff ?? '无'}`,
        `the server says the district's cutoff is ${claims.spill_cutoff ?? 'none'}; the signed spill.csv says ${facts.spillCutoff ?? 'none'}`);
    }
    cutoffsTrusted = true;
    const spillText = spill ? t(`本区调剂中签线 ${spill.cutoff}（余 ${spill.leftover} 包）`, `the district's roll-two cutoff ${spill.cutoff} (${spill.leftover} packs left over)`)
      : t('本区此类口罩无余量', 'no packs left over in the district for this mask type');
    return t(`中签线来自签名的 pools.csv 和 spill.csv：本药店 ${pool.entrants} 人、${pool.packs} 包，中签线 ${pool.cutoff}；${spillText.zh}`,
      `the cutoffs come from the signed pools.csv and spill.csv: ${pool.entrants} entrants for ${pool.packs} packs at the pharmacy, cutoff ${pool.cutoff}; ${spillText.en}`);
  });

  let roll1 = null, roll2 = null;
  await run('rolls', async () => {
    // Rolls from a seed that is not proven would prove nothing, whatever they are.
    if (!seedTrusted || !revealsTrusted) throw new Unchecked(t('种子未通过核验', 'the seed did not pass'));
    needs(entrant, '名单行未通过', 'the leaf line did not pass');
    roll1 = roll(seed, POOL_ROLL, facts.leafIndex);
    roll2 = roll(seed, SPILL_ROLL, facts.leafIndex);
    facts.roll1 = rollHex(roll1);
    facts.roll2 = entrant.flexible ? rollHex(roll2) : null;
    const stated = [['seed', facts.seed], ['roll_1', facts.roll1], ...(entrant.flexible ? [['roll_2', facts.roll2]] : [])]
      .filter(([k, v]) => claims && claims[k] != null && claims[k] !== v);
    if (stated.length) {
      const list = stated.map(([k, v]) => `${k} ${claims[k]} ≠ ${v}`).join('; ');
      fail(`服务器证明中的数值与本页算出的不同：${list}`, `the server's proof states values that differ from those computed here: ${list}`);
    }
    const r2 = entrant.flexible ? t(`，第二轮 ${facts.roll2}`, `, roll two ${facts.roll2}`) : t('', '');
    return t(`用种子和行号 ${facts.leafIndex} 以 ChaCha20 算出：第一轮 ${facts.roll1}${r2.zh}`,
      `computed here with ChaCha20 from the seed and line ${facts.leafIndex}: roll one ${facts.roll1}${r2.en}`);
  });

  await run('outcome', async () => {
    needs(roll1, '没有算出随机数', 'no rolls could be computed');
    if (!cutoffsTrusted) throw new Unchecked(t('中签线未通过核验', 'the cutoffs did not pass'));
    const expected = expectedOutcome({ flexible: entrant.flexible, roll1, roll2, pool, spill });
    facts.expected = expected;
    needs(claims, '没有拿到证明', 'no proof was received');
    if (typeof claims.won !== 'boolean') fail('服务器的证明没有给出结果', 'the server\'s proof states no result');
    const said = claims.won ? t(`中签（第 ${claims.won_roll} 轮，${claims.won_at}）`, `won (roll ${claims.won_roll}, at ${claims.won_at})`) : t('未中签', 'lost');
    if (claims.won !== expected.won) {
      fail(`${expected.why.zh}，但服务器说${said.zh}`, `${expected.why.en}, but the server says ${said.en}`);
    }
    if (expected.won) {
      if (claims.won_roll !== expected.roll) fail(`${expected.why.zh}（第 ${expected.roll} 轮），但服务器说${said.zh}`, `${expected.why.en} (roll ${expected.roll}), but the server says ${said.en}`);
      const at = claims.won_at;
      const inDistrict = (facts.stock || []).some((r) => r.pharmacy_id === at && r.product_id === entrant.productId && r.district_id === facts.districtId);
      if (expected.roll === 1 ? at !== entrant.pharmacyId : !inDistrict) {
        fail(`服务器给的取货药店 ${at} 不可能：第 ${expected.roll} 轮中签应在${expected.roll === 1 ? `本药店 ${entrant.pharmacyId}` : `本区（${facts.districtId}）有此口罩的药店`}`,
          `the server's pickup pharmacy ${at} is impossible: a roll-${expected.roll} win is at ${expected.roll === 1 ? `your pharmacy ${entrant.pharmacyId}` : `a pharmacy of district ${facts.districtId} with this mask type`}`);
      }
    }
    return t(`${expected.why.zh}；服务器的结果（${said.zh}）与此相符`, `${expected.why.en}; the server's result (${said.en}) agrees`);
  });

  return { results, facts, passed: results.every((r) => r.ok === true) };
}
