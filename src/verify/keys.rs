//! The public keys a verification needs: CloudTrail's (per region, by fingerprint) and the
//! archive's manifest signing key. Each comes from AWS (CloudTrail `ListPublicKeys`, KMS
//! `GetPublicKey`) or, for an offline audit, from files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use aws_sdk_cloudtrail::primitives::DateTime;
use rsa::pkcs8::DecodePublicKey as _;

use crate::aws::{Aws, Failure};
use crate::cloudtrail::digest::{PublicKey, PublicKeyList};
use crate::config::Region;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the public keys file {}: {detail}", path.display())]
    File { path: PathBuf, detail: String },
    #[error(
        "cannot get CloudTrail's public keys in {region} (CloudTrail ListPublicKeys: {detail}); \
         give them with --public-keys FILE, saved with `aws cloudtrail list-public-keys \
         --region {region} > FILE`"
    )]
    CloudTrail { region: String, detail: String },
    #[error(
        "cannot get the manifest signing key {key} from KMS (GetPublicKey: {detail}); the \
         auditor needs kms:GetPublicKey on it, or give it with --manifest-public-key PEM \
         (`trailvault manifest public-key` writes one)"
    )]
    Kms { key: String, detail: String },
}

/// CloudTrail's signing keys by fingerprint, from files or fetched per region.
pub struct CloudTrailKeys {
    keys: BTreeMap<String, PublicKey>,
    /// Where keys come from when a fingerprint is not known yet (`None`: files only).
    aws: Option<Aws>,
    fetched: BTreeSet<String>,
}

impl CloudTrailKeys {
    /// Keys from files in the shape of `aws cloudtrail list-public-keys` output; a directory
    /// stands for every `*.json` in it. Fingerprints are unique across regions, so one map
    /// holds them all.
    pub fn from_files(paths: &[PathBuf]) -> Result<CloudTrailKeys, KeyError> {
        let mut keys = BTreeMap::new();
        for path in paths {
            for file in json_files(path)? {
                let err = |detail: String| KeyError::File {
                    path: file.clone(),
                    detail,
                };
                let text = std::fs::read_to_string(&file).map_err(|e| err(e.to_string()))?;
                let list: PublicKeyList = serde_json::from_str(&text).map_err(|e| {
                    err(format!(
                        "not the output of `aws cloudtrail list-public-keys`: {e}"
                    ))
                })?;
                keys.extend(list.keys().map_err(|e| err(e.to_string()))?);
            }
        }
        Ok(CloudTrailKeys {
            keys,
            aws: None,
            fetched: BTreeSet::new(),
        })
    }

    /// Keys fetched from CloudTrail in each digest's region, as they are needed.
    pub fn online(aws: Aws) -> CloudTrailKeys {
        CloudTrailKeys {
            keys: BTreeMap::new(),
            aws: Some(aws),
            fetched: BTreeSet::new(),
        }
    }

    /// Makes sure the keys of `region` are known (one `ListPublicKeys` per region, online).
    pub async fn load_region(&mut self, region: &str) -> Result<(), KeyError> {
        let Some(aws) = &self.aws else {
            return Ok(());
        };
        if self.fetched.contains(region) {
            return Ok(());
        }
        let fail = |detail: String| KeyError::CloudTrail {
            region: region.to_owned(),
            detail,
        };
        let parsed = Region::parse(region).map_err(|e| fail(e.to_string()))?;
        let client = aws.cloudtrail(&parsed);
        let mut token = None;
        loop {
            // Every key CloudTrail ever used here: from the epoch to now.
            let out = client
                .list_public_keys()
                .start_time(DateTime::from_secs(0))
                .end_time(DateTime::from_secs(
                    time::OffsetDateTime::now_utc().unix_timestamp(),
                ))
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| fail(Failure::from_sdk(&e).detail))?;
            for k in out.public_key_list() {
                let (Some(fingerprint), Some(value)) = (k.fingerprint(), k.value()) else {
                    continue;
                };
                let key = PublicKey::from_der(fingerprint, value.as_ref())
                    .map_err(|e| fail(e.to_string()))?;
                self.keys.insert(fingerprint.to_owned(), key);
            }
            token = out.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        self.fetched.insert(region.to_owned());
        Ok(())
    }

    pub fn get(&self, fingerprint: &str) -> Option<&PublicKey> {
        self.keys.get(fingerprint)
    }
}

fn json_files(path: &Path) -> Result<Vec<PathBuf>, KeyError> {
    let err = |e: std::io::Error| KeyError::File {
        path: path.to_owned(),
        detail: e.to_string(),
    };
    if !path.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(err)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    Ok(files)
}

/// The manifest signing key from a PEM file (SubjectPublicKeyInfo, as `trailvault manifest
/// public-key` and `openssl` write it).
pub fn manifest_key_from_pem(path: &Path) -> Result<PublicKey, KeyError> {
    let err = |detail: String| KeyError::File {
        path: path.to_owned(),
        detail,
    };
    let pem = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let key = rsa::RsaPublicKey::from_public_key_pem(&pem)
        .map_err(|e| err(format!("not an RSA public key in PEM: {e}")))?;
    let der =
        rsa::pkcs8::EncodePublicKey::to_public_key_der(&key).map_err(|e| err(e.to_string()))?;
    PublicKey::from_der("manifest", der.as_bytes()).map_err(|e| err(e.to_string()))
}

/// The manifest signing key's public half from KMS, as DER SubjectPublicKeyInfo.
pub async fn manifest_key_der(aws: &Aws, region: &Region, key: &str) -> Result<Vec<u8>, KeyError> {
    let out = aws
        .kms(region)
        .get_public_key()
        .key_id(key)
        .send()
        .await
        .map_err(|e| KeyError::Kms {
            key: key.to_owned(),
            detail: Failure::from_sdk(&e).detail,
        })?;
    out.public_key()
        .map(|b| b.as_ref().to_vec())
        .ok_or_else(|| KeyError::Kms {
            key: key.to_owned(),
            detail: "KMS returned no public key".to_owned(),
        })
}

/// The manifest signing key from KMS.
pub async fn manifest_key_from_kms(
    aws: &Aws,
    region: &Region,
    key: &str,
) -> Result<PublicKey, KeyError> {
    let der = manifest_key_der(aws, region, key).await?;
    PublicKey::from_der("manifest", &der).map_err(|e| KeyError::Kms {
        key: key.to_owned(),
        detail: e.to_string(),
    })
}
