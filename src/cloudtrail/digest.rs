//! CloudTrail digest files and their signatures.
//!
//! A digest is signed with SHA256withRSA (RSASSA-PKCS1-v1_5 over SHA-256). The signature is
//! not in the file but in the digest object's user metadata (`x-amz-meta-signature`, hex). The
//! string to sign is, UTF-8, `\n`-separated, with no trailing newline:
//!
//! ```text
//! {digestEndTime}
//! {digestS3Bucket}/{digestS3Object}
//! {hex SHA-256 of the decompressed digest bytes, exactly as delivered}
//! {previousDigestSignature, or the text null}
//! ```
//!
//! The hash is over the delivered bytes, never over re-serialised JSON.

use std::collections::BTreeMap;

use base64::Engine as _;
use rsa::pkcs1::DecodeRsaPublicKey as _;
use rsa::pkcs8::DecodePublicKey as _;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The user metadata key (without `x-amz-meta-`) that holds a digest's signature.
pub const SIGNATURE_METADATA: &str = "signature";
/// The user metadata key that names the signature algorithm.
pub const SIGNATURE_ALGORITHM_METADATA: &str = "signature-algorithm";
/// The only algorithm CloudTrail uses.
pub const SHA256_WITH_RSA: &str = "SHA256withRSA";

/// A digest file's content. Unknown fields are ignored: CloudTrail may add some.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Digest {
    pub aws_account_id: String,
    pub digest_start_time: String,
    pub digest_end_time: String,
    #[serde(rename = "digestS3Bucket")]
    pub digest_s3_bucket: String,
    #[serde(rename = "digestS3Object")]
    pub digest_s3_object: String,
    pub digest_public_key_fingerprint: String,
    pub digest_signature_algorithm: String,
    pub newest_event_time: Option<String>,
    pub oldest_event_time: Option<String>,
    #[serde(rename = "previousDigestS3Bucket")]
    pub previous_digest_s3_bucket: Option<String>,
    #[serde(rename = "previousDigestS3Object")]
    pub previous_digest_s3_object: Option<String>,
    pub previous_digest_hash_value: Option<String>,
    pub previous_digest_hash_algorithm: Option<String>,
    pub previous_digest_signature: Option<String>,
    pub log_files: Vec<DigestLogFile>,
}

/// One log file a digest vouches for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DigestLogFile {
    #[serde(rename = "s3Bucket")]
    pub s3_bucket: String,
    #[serde(rename = "s3Object")]
    pub s3_object: String,
    /// Hex SHA-256 of the log file's decompressed bytes.
    pub hash_value: String,
    pub hash_algorithm: String,
    pub newest_event_time: Option<String>,
    pub oldest_event_time: Option<String>,
}

impl Digest {
    /// Reads a digest from its decompressed bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Digest, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The exact text CloudTrail signed, given the decompressed bytes this digest was read from.
    pub fn string_to_sign(&self, decompressed: &[u8]) -> String {
        string_to_sign(
            &self.digest_end_time,
            &self.digest_s3_bucket,
            &self.digest_s3_object,
            decompressed,
            self.previous_digest_signature.as_deref(),
        )
    }
}

/// The string CloudTrail signs for a digest (see the module documentation).
pub fn string_to_sign(
    digest_end_time: &str,
    bucket: &str,
    key: &str,
    decompressed: &[u8],
    previous_signature: Option<&str>,
) -> String {
    format!(
        "{digest_end_time}\n{bucket}/{key}\n{}\n{}",
        hex::encode(Sha256::digest(decompressed)),
        previous_signature.unwrap_or("null")
    )
}

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature is not hex")]
    NotHex,
    #[error("signature verification failed")]
    Mismatch,
}

/// Why a public key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PublicKeyError {
    #[error("public key {fingerprint}: its value is not base64")]
    NotBase64 { fingerprint: String },
    #[error(
        "public key {fingerprint}: neither a PKCS#1 RSAPublicKey nor a SubjectPublicKeyInfo \
         in DER"
    )]
    NotRsa { fingerprint: String },
}

/// A CloudTrail signing key, identified by the fingerprint digests name it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub fingerprint: String,
    key: RsaPublicKey,
}

impl PublicKey {
    /// Reads a DER public key, PKCS#1 `RSAPublicKey` (what CloudTrail usually returns) or
    /// `SubjectPublicKeyInfo`.
    pub fn from_der(fingerprint: &str, der: &[u8]) -> Result<PublicKey, PublicKeyError> {
        let key = RsaPublicKey::from_pkcs1_der(der)
            .or_else(|_| RsaPublicKey::from_public_key_der(der))
            .map_err(|_| PublicKeyError::NotRsa {
                fingerprint: fingerprint.to_owned(),
            })?;
        Ok(PublicKey {
            fingerprint: fingerprint.to_owned(),
            key,
        })
    }

    /// Hex SHA-256 of the key's DER SubjectPublicKeyInfo: a fingerprint anyone can compute
    /// from the PEM (`openssl pkey -pubin -outform DER | sha256sum`).
    pub fn spki_sha256(&self) -> String {
        use rsa::pkcs8::EncodePublicKey as _;
        match self.key.to_public_key_der() {
            Ok(der) => hex::encode(Sha256::digest(der.as_bytes())),
            Err(_) => String::new(),
        }
    }

    /// Checks a hex SHA256withRSA signature over `message`.
    pub fn verify(&self, message: &[u8], signature_hex: &str) -> Result<(), SignatureError> {
        let signature = hex::decode(signature_hex).map_err(|_| SignatureError::NotHex)?;
        self.key
            .verify(
                Pkcs1v15Sign::new::<Sha256>(),
                &Sha256::digest(message),
                &signature,
            )
            .map_err(|_| SignatureError::Mismatch)
    }
}

/// The output of CloudTrail `ListPublicKeys` (as the AWS CLI prints it), which is also the
/// shape of an offline keys file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PublicKeyList {
    pub public_key_list: Vec<PublicKeyEntry>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PublicKeyEntry {
    /// Base64 of the DER key.
    pub value: String,
    /// The CLI prints epoch seconds or ISO 8601 depending on its version: both are kept as read.
    pub validity_start_time: serde_json::Value,
    pub validity_end_time: serde_json::Value,
    pub fingerprint: String,
}

impl PublicKeyList {
    /// The keys by fingerprint.
    pub fn keys(&self) -> Result<BTreeMap<String, PublicKey>, PublicKeyError> {
        self.public_key_list
            .iter()
            .map(|entry| {
                let der = base64::engine::general_purpose::STANDARD
                    .decode(&entry.value)
                    .map_err(|_| PublicKeyError::NotBase64 {
                        fingerprint: entry.fingerprint.clone(),
                    })?;
                let key = PublicKey::from_der(&entry.fingerprint, &der)?;
                Ok((entry.fingerprint.clone(), key))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_string_to_sign_is_exactly_four_lines() {
        let bytes = br#"{"awsAccountId":"111122223333"}"#;
        let first = string_to_sign(
            "2026-11-21T10:01:31Z",
            "trail-bucket",
            "AWSLogs/111122223333/CloudTrail-Digest/x.json.gz",
            bytes,
            None,
        );
        assert_eq!(
            first,
            format!(
                "2026-11-21T10:01:31Z\ntrail-bucket/AWSLogs/111122223333/CloudTrail-Digest/x.json.gz\n{}\nnull",
                hex::encode(Sha256::digest(bytes))
            )
        );
        let chained = string_to_sign("t", "b", "k", b"", Some("abcd"));
        assert_eq!(
            chained,
            "t\nb/k\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\nabcd"
        );
    }

    #[test]
    fn a_digest_reads_with_null_links() {
        let json = br#"{"awsAccountId":"111122223333","digestStartTime":"2026-11-21T09:01:31Z",
            "digestEndTime":"2026-11-21T10:01:31Z","digestS3Bucket":"b","digestS3Object":"k",
            "digestPublicKeyFingerprint":"f","digestSignatureAlgorithm":"SHA256withRSA",
            "newestEventTime":null,"oldestEventTime":null,"previousDigestS3Bucket":null,
            "previousDigestS3Object":null,"previousDigestHashValue":null,
            "previousDigestHashAlgorithm":null,"previousDigestSignature":null,"logFiles":[],
            "someFutureField":1}"#;
        let d = Digest::from_json(json).unwrap();
        assert_eq!(d.digest_s3_bucket, "b");
        assert!(d.previous_digest_signature.is_none());
        assert!(d.string_to_sign(json).ends_with("\nnull"));
    }
}
