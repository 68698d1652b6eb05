// Ed25519 signatures of DR commands and acks (node:crypto). The gateway holds only the EMS's
// public keys, so a stolen gateway cannot forge commands; it signs its acks with its own key, so
// nobody else on the broker can tell the EMS a curtailment happened. The signed bytes are a prefix
// followed by the exact UTF-8 bytes of the envelope's text: the prefix separates each use of a key
// from any other thing it might sign (domain separation), and signing the text as sent avoids JSON
// canonicalisation differences between the EMS's language and ours.
import { generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
// Key parsing (parsePublicKey, parsePrivateKey) is in src/runtime/ed25519-keys.ts: the site schema
// checks the configured keys with it too.
import { ED25519_SPKI_PREFIX } from '../runtime/ed25519-keys.js';

export const SIGNING_PREFIX = 'ems-dr-cmd-v1\n';
/** The gateway's acks are signed with its own key under another prefix: neither can pass for the other. */
export const ACK_SIGNING_PREFIX = 'ems-dr-ack-v1\n';

/** Base64 signature over `prefix` + text. */
function signText(prefix: string, text: string, privateKey: KeyObject): string {
  return sign(null, Buffer.from(prefix + text, 'utf8'), privateKey).toString('base64');
}

/** True when any of the keys verifies the signature over `prefix` + text. Never throws on hostile input. */
function verifyText(prefix: string, text: string, signatureB64: string, keys: readonly KeyObject[]): boolean {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(signatureB64)) return false;
  const sig = Buffer.from(signatureB64, 'base64');
  if (sig.length !== 64) return false;
  const data = Buffer.from(prefix + text, 'utf8');
  for (const key of keys) {
    try {
      if (verify(null, data, key, sig)) return true;
    } catch {
      // A key that cannot verify (should not happen after parsePublicKey) counts as not matching.
    }
  }
  return false;
}

/** Base64 signature over SIGNING_PREFIX + commandText (the EMS's side). */
export function signCommand(commandText: string, privateKey: KeyObject): string {
  return signText(SIGNING_PREFIX, commandText, privateKey);
}

export function verifyCommand(commandText: string, signatureB64: string, keys: readonly KeyObject[]): boolean {
  return verifyText(SIGNING_PREFIX, commandText, signatureB64, keys);
}

/** Base64 signature over ACK_SIGNING_PREFIX + ackText (the gateway's side). */
export function signAck(ackText: string, privateKey: KeyObject): string {
  return signText(ACK_SIGNING_PREFIX, ackText, privateKey);
}

export function verifyAck(ackText: string, signatureB64: string, keys: readonly KeyObject[]): boolean {
  return verifyText(ACK_SIGNING_PREFIX, ackText, signatureB64, keys);
}

interface GeneratedKeyPair {
  privatePem: string;
  publicPem: string;
  /** Base64 of the raw 32 public key bytes: the one-line form for a site file. */
  publicRaw: string;
}

export function generateKeyPair(): GeneratedKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const der = publicKey.export({ format: 'der', type: 'spki' });
  return {
    privatePem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    publicPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    publicRaw: der.subarray(ED25519_SPKI_PREFIX.length).toString('base64'),
  };
}
