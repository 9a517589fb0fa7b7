//! OAuth access tokens for Google Cloud, from the usual places, in the order Google's own
//! client libraries use: the key file named by `GOOGLE_APPLICATION_CREDENTIALS` (a
//! service-account key: a JWT signed RS256 with ring, exchanged at the key's token URI;
//! or an `authorized_user` file), then gcloud's application-default credentials file,
//! then `gcloud auth print-access-token`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use serde::Deserialize;
use serde_json::json;

use super::api::Token;
use super::http::{Client, Request, Response};

/// Read and write access to Cloud Storage and Compute Engine.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Where the token comes from.
#[derive(Debug)]
pub enum Credentials {
    ServiceAccount {
        file: PathBuf,
        key: ServiceAccountKey,
    },
    AuthorizedUser {
        file: PathBuf,
        key: AuthorizedUser,
    },
    Gcloud,
}

/// The fields of a service-account key file that matter here.
#[derive(Debug, Deserialize)]
pub struct ServiceAccountKey {
    pub client_email: String,
    pub private_key: String,
    #[serde(default)]
    pub private_key_id: String,
    #[serde(default = "default_token_uri")]
    pub token_uri: String,
}

#[derive(Debug, Deserialize)]
pub struct AuthorizedUser {
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
    #[serde(default = "default_token_uri")]
    pub token_uri: String,
}

fn default_token_uri() -> String {
    "https://oauth2.googleapis.com/token".into()
}

#[derive(Deserialize)]
#[serde(tag = "type")]
enum KeyFile {
    #[serde(rename = "service_account")]
    ServiceAccount(ServiceAccountKey),
    #[serde(rename = "authorized_user")]
    AuthorizedUser(AuthorizedUser),
}

impl Credentials {
    /// Finds the credentials, without using them.
    pub fn discover() -> Result<Credentials> {
        if let Some(file) = std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS") {
            return Credentials::from_file(Path::new(&file))
                .context("in the file named by GOOGLE_APPLICATION_CREDENTIALS");
        }
        let adc = std::env::var_os("CLOUDSDK_CONFIG")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".config/gcloud")))
            .map(|dir| dir.join("application_default_credentials.json"));
        match adc {
            Some(file) if file.exists() => Credentials::from_file(&file),
            _ => Ok(Credentials::Gcloud),
        }
    }

    pub fn from_file(file: &Path) -> Result<Credentials> {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read credentials {}", file.display()))?;
        let key: KeyFile = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a service_account or authorized_user key file",
                file.display()
            )
        })?;
        let file = file.to_path_buf();
        Ok(match key {
            KeyFile::ServiceAccount(key) => Credentials::ServiceAccount { file, key },
            KeyFile::AuthorizedUser(key) => Credentials::AuthorizedUser { file, key },
        })
    }

    /// Where the token comes from, for messages.
    pub fn describe(&self) -> String {
        match self {
            Credentials::ServiceAccount { file, key } => {
                format!("service account {} ({})", key.client_email, file.display())
            }
            Credentials::AuthorizedUser { file, .. } => {
                format!("user credentials {}", file.display())
            }
            Credentials::Gcloud => "gcloud auth print-access-token".into(),
        }
    }

    /// An access token.
    pub fn token(&self, client: &Client) -> Result<String> {
        let (uri, fields) = match self {
            Credentials::Gcloud => return gcloud_token(client),
            Credentials::ServiceAccount { file, key } => {
                let jwt = signed_jwt(key, now())
                    .with_context(|| format!("signing with the key in {}", file.display()))?;
                (
                    &key.token_uri,
                    vec![("grant_type", JWT_BEARER.to_string()), ("assertion", jwt)],
                )
            }
            Credentials::AuthorizedUser { key, .. } => (
                &key.token_uri,
                vec![
                    ("grant_type", "refresh_token".to_string()),
                    ("client_id", key.client_id.clone()),
                    ("client_secret", key.client_secret.clone()),
                    ("refresh_token", key.refresh_token.clone()),
                ],
            ),
        };
        let request = Request::new("POST", uri.clone()).form(fields);
        let response = client.send_retrying(&request, || {
            let token = Token {
                access_token: "DRY-RUN".into(),
                expires_in: Some(3600),
                token_type: Some("Bearer".into()),
            };
            Response::new(200, &token)
        })?;
        if !response.is_success() {
            bail!(
                "the token exchange at {uri} was refused (HTTP {}): {}",
                response.status,
                response.error_text()
            );
        }
        let token: Token = response.json()?;
        if token.access_token.is_empty() {
            bail!("the token exchange at {uri} returned no access_token");
        }
        Ok(token.access_token)
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// The JWT a service account presents: RS256 over `header.claims`, valid for an hour.
pub fn signed_jwt(key: &ServiceAccountKey, now: u64) -> Result<String> {
    let der = berth_image::release::sign::pem_decode(key.private_key.as_bytes(), "PRIVATE KEY")
        .context("private_key holds no PEM \"PRIVATE KEY\"")?
        .map_err(anyhow::Error::msg)?;
    let pair = RsaKeyPair::from_pkcs8(&der)
        .map_err(|e| anyhow::anyhow!("private_key is not an RSA PKCS#8 key: {e}"))?;
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": key.private_key_id});
    let claims = json!({
        "iss": key.client_email,
        "scope": SCOPE,
        "aud": key.token_uri,
        "iat": now,
        "exp": now + 3600,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = vec![0u8; pair.public().modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        signing_input.as_bytes(),
        &mut signature,
    )
    .map_err(|e| anyhow::anyhow!("RS256 signing failed: {e}"))?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

fn gcloud_token(client: &Client) -> Result<String> {
    if client.is_dry_run() {
        client.note("would run: gcloud auth print-access-token");
        return Ok("DRY-RUN".into());
    }
    let out = Command::new("gcloud")
        .args(["auth", "print-access-token"])
        .output()
        .context(
            "no credentials: set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, \
             or install the Google Cloud CLI and run `gcloud auth login`",
        )?;
    if !out.status.success() {
        bail!(
            "gcloud auth print-access-token failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if token.is_empty() {
        bail!("gcloud auth print-access-token printed no token");
    }
    Ok(token)
}
