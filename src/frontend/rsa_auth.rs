//! caching_sha2_password's full authentication without TLS, as MySQL does it:
//! the client asks for the server's RSA public key (one byte, 2) unless it has
//! it already, then sends its password (with a trailing NUL, XORed with the
//! login scramble) encrypted with RSA-OAEP (SHA-1, MGF1-SHA-1).
//!
//! The key pair comes from `proxy.rsa_private_key` (PEM, PKCS#8 or PKCS#1),
//! loaded at startup, or is generated (2048 bits) once per process, in the
//! background at startup when some account can need it, else on first use.

use std::sync::Arc;

use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};
use rsa::{Oaep, RsaPrivateKey};
use tokio::sync::OnceCell;

/// The "request public key" byte of caching_sha2_password (1 is sha256_password's, also accepted).
pub const REQUEST_PUBLIC_KEY: u8 = 2;

/// Bits of a generated key (MySQL's default for its auto-generated key).
const GENERATED_BITS: usize = 2048;

pub struct KeyPair {
    private: RsaPrivateKey,
    /// SubjectPublicKeyInfo PEM ("BEGIN PUBLIC KEY"), what clients expect.
    pub public_pem: String,
}

impl KeyPair {
    fn new(private: RsaPrivateKey) -> Result<KeyPair, String> {
        let public_pem = private.to_public_key().to_public_key_pem(LineEnding::LF).map_err(|e| e.to_string())?;
        Ok(KeyPair { private, public_pem })
    }

    /// Read a PEM private key (PKCS#8 "PRIVATE KEY" or PKCS#1 "RSA PRIVATE KEY").
    pub fn from_pem(pem: &str) -> Result<KeyPair, String> {
        let private = RsaPrivateKey::from_pkcs8_pem(pem)
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem))
            .map_err(|e| format!("not an RSA private key in PEM (PKCS#8 or PKCS#1): {e}"))?;
        KeyPair::new(private)
    }

    fn generate() -> Result<KeyPair, String> {
        let mut rng = rsa::rand_core::OsRng;
        let private = RsaPrivateKey::new(&mut rng, GENERATED_BITS).map_err(|e| e.to_string())?;
        KeyPair::new(private)
    }

    /// The password a client sent: RSA-OAEP decrypted, unXORed with the scramble,
    /// trailing NUL removed. `None` when it does not decrypt (wrong key, garbage).
    pub fn decrypt_password(&self, ciphertext: &[u8], scramble: &[u8; 20]) -> Option<Vec<u8>> {
        let mut plain = self.private.decrypt(Oaep::new::<sha1::Sha1>(), ciphertext).ok()?;
        for (i, b) in plain.iter_mut().enumerate() {
            *b ^= scramble[i % scramble.len()];
        }
        if plain.last() == Some(&0) {
            plain.pop();
        }
        Some(plain)
    }
}

/// The process's key pair, loaded or generated once.
#[derive(Default)]
pub struct RsaKeys {
    cell: OnceCell<Arc<KeyPair>>,
}

impl RsaKeys {
    /// Use the key of `proxy.rsa_private_key` (read at startup).
    pub fn set(&self, pair: KeyPair) {
        let _ = self.cell.set(Arc::new(pair));
    }

    /// The key pair, generating one (off the async workers) the first time.
    pub async fn get(&self) -> Result<Arc<KeyPair>, String> {
        self.cell
            .get_or_try_init(|| async {
                let started = std::time::Instant::now();
                let pair = tokio::task::spawn_blocking(KeyPair::generate).await.map_err(|e| e.to_string())??;
                tracing::info!(
                    ms = started.elapsed().as_millis() as u64,
                    "generated an RSA key pair for caching_sha2_password logins without TLS"
                );
                Ok(Arc::new(pair))
            })
            .await
            .cloned()
    }
}

/// Read `proxy.rsa_private_key` from disk.
pub fn load(path: &str) -> std::io::Result<KeyPair> {
    let bad = |e: &dyn std::fmt::Display| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("proxy.rsa_private_key = {path:?}: {e}"))
    };
    let pem = std::fs::read_to_string(path).map_err(|e| bad(&e))?;
    KeyPair::from_pem(&pem).map_err(|e| bad(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs8::DecodePublicKey;
    use rsa::RsaPublicKey;

    #[test]
    fn a_password_encrypted_as_clients_do_comes_back() {
        let mut rng = rsa::rand_core::OsRng;
        // A small key keeps the test fast; the padding and XOR are what is tested.
        let pair = KeyPair::new(RsaPrivateKey::new(&mut rng, 1024).unwrap()).unwrap();
        assert!(pair.public_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
        let public = RsaPublicKey::from_public_key_pem(&pair.public_pem).unwrap();
        let scramble: [u8; 20] = std::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(5));
        // 25 bytes + NUL: longer than the scramble, so the XOR wraps around.
        let password = b"correct horse battery sta";
        let mut xored: Vec<u8> = password.iter().chain(&[0]).copied().collect();
        for (i, b) in xored.iter_mut().enumerate() {
            *b ^= scramble[i % 20];
        }
        let ct = public.encrypt(&mut rng, Oaep::new::<sha1::Sha1>(), &xored).unwrap();
        assert_eq!(pair.decrypt_password(&ct, &scramble).as_deref(), Some(&password[..]));
        // Another scramble gives another password; garbage does not decrypt.
        let other = [9u8; 20];
        assert_ne!(pair.decrypt_password(&ct, &other).as_deref(), Some(&password[..]));
        assert_eq!(pair.decrypt_password(b"not a ciphertext", &scramble), None);
    }

    #[test]
    fn keys_load_from_pkcs8_and_pkcs1_pem() {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::pkcs8::EncodePrivateKey;
        let mut rng = rsa::rand_core::OsRng;
        let key = RsaPrivateKey::new(&mut rng, 1024).unwrap();
        let p8 = key.to_pkcs8_pem(LineEnding::LF).unwrap();
        let p1 = key.to_pkcs1_pem(LineEnding::LF).unwrap();
        let a = KeyPair::from_pem(&p8).unwrap();
        let b = KeyPair::from_pem(&p1).unwrap();
        assert_eq!(a.public_pem, b.public_pem);
        assert!(KeyPair::from_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_err());
    }
}
