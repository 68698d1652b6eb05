// Ed25519 keys from text (node:crypto): the EMS's public keys (PEM or base64 of the raw 32 bytes)
// and private keys (PEM). The lowest layer, so the site schema can refuse a bad key while it
// validates the site file and demand-response signing can use the same parsing.
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';

// DER SubjectPublicKeyInfo header of an Ed25519 key (RFC 8410): the 32 raw key bytes follow it.
export const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

class KeyError extends Error {
  readonly code = 'DR_BAD_KEY';
  constructor(message: string) {
    super(message);
    this.name = 'KeyError';
  }
}

/** A public key from PEM (SPKI) or base64 of the raw 32 bytes. */
export function parsePublicKey(text: string, where = 'public key'): KeyObject {
  const t = text.trim();
  let key: KeyObject;
  try {
    if (t.startsWith('-----BEGIN')) {
      key = createPublicKey(t);
    } else {
      const raw = Buffer.from(t, 'base64');
      if (raw.length !== 32) throw new KeyError(`${where}: base64 key must decode to 32 bytes, got ${raw.length}`);
      key = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
    }
  } catch (err) {
    if (err instanceof KeyError) throw err;
    throw new KeyError(`${where}: not a PEM or base64 Ed25519 public key (${(err as Error).message})`);
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new KeyError(`${where}: key type is ${String(key.asymmetricKeyType)}, expected ed25519`);
  }
  return key;
}

export function parsePrivateKey(pem: string, where = 'private key'): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new KeyError(`${where}: not a PEM private key (${(err as Error).message})`);
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new KeyError(`${where}: key type is ${String(key.asymmetricKeyType)}, expected ed25519`);
  }
  return key;
}
