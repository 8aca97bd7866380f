//! Authentication at the edge: access tokens (ES256 JWTs issued by `/oauth/token`) and,
//! for chargers and CSMSs, mTLS client certificates. Roles and scopes are checked here
//! and the principal travels on to the services.

use std::path::Path;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use pnc_proto::principal::{Principal, Role};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::state::AppState;

/// Claims of pnc's access tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The client ID.
    pub sub: String,
    pub iat: u64,
    pub exp: u64,
    pub jti: String,
    pub role: String,
    /// OPCP-style space-separated scope string.
    pub scope: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wmis: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provider_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operator_ids: Vec<String>,
    #[serde(default)]
    pub client_name: String,
}

/// Issues and checks access tokens with one EC P-256 key.
#[derive(Clone)]
pub struct TokenAuthority {
    encoding: Arc<EncodingKey>,
    decoding: Arc<DecodingKey>,
    validation: Arc<Validation>,
    issuer: String,
    ttl_seconds: u64,
    /// Tokens already verified, with their `exp`: a CPO sends the same token for every EV
    /// request, and its ES256 check is the gateway's main CPU cost.
    verified: moka::future::Cache<VerifiedToken, (Principal, u64)>,
}

/// Bytes of verified tokens kept (about 16 000 of pnc's ~500-byte tokens); each for at
/// most [`VERIFIED_TOKEN_TTL`] and never past its `exp`.
const VERIFIED_TOKEN_CAPACITY_BYTES: u64 = 8 << 20;
/// What an entry costs beyond its token's bytes (key, principal, the cache's bookkeeping).
const VERIFIED_TOKEN_OVERHEAD_BYTES: u32 = 256;
const VERIFIED_TOKEN_TTL: std::time::Duration = std::time::Duration::from_secs(300);

impl std::fmt::Debug for TokenAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenAuthority")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl TokenAuthority {
    /// Loads the signing key from `key_file`, or from `data_dir/gateway/token-signing-key.pem`
    /// (made on first use, mode 0600).
    pub fn load_or_create(
        key_file: Option<&Path>,
        data_dir: &Path,
        issuer: &str,
        ttl_seconds: u64,
    ) -> anyhow::Result<TokenAuthority> {
        let pem = match key_file {
            Some(path) => std::fs::read(path).map_err(|error| {
                anyhow::anyhow!("token signing key {}: {error}", path.display())
            })?,
            None => load_or_create_key(&data_dir.join("gateway").join("token-signing-key.pem"))?,
        };
        let private = PKey::private_key_from_pem(&pem)?;
        let public_pem = private.public_key_to_pem()?;
        let encoding = EncodingKey::from_ec_pem(&private.private_key_to_pem_pkcs8()?)?;
        let decoding = DecodingKey::from_ec_pem(&public_pem)?;
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[issuer]);
        validation.leeway = 30;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Ok(TokenAuthority {
            encoding: Arc::new(encoding),
            decoding: Arc::new(decoding),
            validation: Arc::new(validation),
            issuer: issuer.to_string(),
            ttl_seconds,
            verified: moka::future::Cache::builder()
                .max_capacity(VERIFIED_TOKEN_CAPACITY_BYTES)
                .weigher(|token: &VerifiedToken, _| token.weight())
                .time_to_live(VERIFIED_TOKEN_TTL)
                .build(),
        })
    }

    pub fn ttl_seconds(&self) -> u64 {
        self.ttl_seconds
    }

    /// A token for `principal`.
    pub fn issue(&self, principal: &Principal, client_name: &str) -> anyhow::Result<String> {
        let now = jsonwebtoken::get_current_timestamp();
        let role = Role::try_from(principal.role).unwrap_or(Role::Unspecified);
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.issuer.clone(),
            sub: principal.client_id.clone(),
            iat: now,
            exp: now + self.ttl_seconds,
            jti: uuid::Uuid::new_v4().to_string(),
            role: role.name().to_string(),
            scope: scope_string(role),
            wmis: principal.wmis.clone(),
            provider_ids: principal.provider_ids.clone(),
            operator_ids: principal.operator_ids.clone(),
            client_name: client_name.to_string(),
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::ES256),
            &claims,
            &self.encoding,
        )?)
    }

    /// The principal of a valid token.
    pub fn verify(&self, token: &str) -> Result<Principal, ApiError> {
        self.verify_with_expiry(token)
            .map(|(principal, _)| principal)
    }

    fn verify_with_expiry(&self, token: &str) -> Result<(Principal, u64), ApiError> {
        if token.len() > 8192 {
            return Err(ApiError::unauthorized("invalid access token"));
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|error| match error.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    ApiError::unauthorized("access token expired")
                }
                _ => ApiError::unauthorized("invalid access token"),
            })?;
        let claims = data.claims;
        let role = Role::from_name(&claims.role)
            .ok_or_else(|| ApiError::unauthorized("invalid access token"))?;
        let principal = Principal {
            client_id: claims.sub,
            role: role as i32,
            wmis: claims.wmis,
            provider_ids: claims.provider_ids,
            operator_ids: claims.operator_ids,
        };
        Ok((principal, claims.exp))
    }

    /// [`TokenAuthority::verify`], remembering valid tokens until their `exp` (at most five
    /// minutes), so a repeated token costs a lookup instead of an ECDSA verification. The key
    /// is the whole token, so a changed byte is a different, unverified token.
    pub async fn verify_cached(&self, token: &str) -> Result<Principal, ApiError> {
        if token.len() > 8192 {
            return Err(ApiError::unauthorized("invalid access token"));
        }
        let key = VerifiedToken::of(token);
        let now = jsonwebtoken::get_current_timestamp();
        if let Some((principal, exp)) = self.verified.get(&key).await {
            if now < exp {
                return Ok(principal);
            }
            self.verified.invalidate(&key).await;
        }
        let (principal, exp) = self.verify_with_expiry(token)?;
        if now < exp {
            self.verified.insert(key, (principal.clone(), exp)).await;
        }
        Ok(principal)
    }

    /// The principal of a token that [`TokenAuthority::verify_cached`] has verified before
    /// and that has not expired. `None` means "not known here", not "invalid": the caller
    /// then has to verify it the usual way.
    pub async fn already_verified(&self, token: &str) -> Option<Principal> {
        if token.len() > 8192 {
            return None;
        }
        let (principal, exp) = self.verified.get(&VerifiedToken::of(token)).await?;
        (jsonwebtoken::get_current_timestamp() < exp).then_some(principal)
    }
}

/// The verified-token cache's key: the whole token, compared in constant time and never
/// printed. The cache finds it by its keyed hasher (a random SipHash key per process), so
/// a presented token is compared only with the tokens in its bucket, and only in full.
/// (A SHA-256 of the token was the key before: on CPUs without SHA extensions it cost a
/// third of a cached OCPP answer.)
#[derive(Clone)]
struct VerifiedToken(Box<str>);

impl VerifiedToken {
    fn of(token: &str) -> VerifiedToken {
        VerifiedToken(token.into())
    }

    fn weight(&self) -> u32 {
        u32::try_from(self.0.len())
            .unwrap_or(u32::MAX)
            .saturating_add(VERIFIED_TOKEN_OVERHEAD_BYTES)
    }
}

impl PartialEq for VerifiedToken {
    fn eq(&self, other: &VerifiedToken) -> bool {
        use subtle::ConstantTimeEq;
        // Lengths are not secret (a token's length is on the wire); the bytes are.
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for VerifiedToken {}

// By the same bytes `eq` compares, so equal tokens hash alike.
impl std::hash::Hash for VerifiedToken {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl std::fmt::Debug for VerifiedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifiedToken({} bytes)", self.0.len())
    }
}

/// The token a request presents: `Authorization: Bearer …`, else MaEVe's `x-api-key`.
pub fn presented_token(headers: &http::HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, token) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    bearer.or_else(|| {
        headers
            .get("x-api-key")
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
    })
}

/// OPCP's scope names for what a role may use.
pub fn scope_string(role: Role) -> String {
    match role {
        Role::Admin => "rcpservice pcpservice ccpservice cpservice pkigateway admin",
        Role::Oem => "pcpservice ccpservice",
        Role::Emsp => "cpservice ccpservice",
        Role::Cpo => "rcpservice ccpservice pkigateway",
        Role::Charger => "rcpservice pkigateway",
        Role::Unspecified => "",
    }
    .to_string()
}

fn load_or_create_key(path: &Path) -> anyhow::Result<Vec<u8>> {
    if let Ok(pem) = std::fs::read(path) {
        return Ok(pem);
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
    let pem = key.private_key_to_pem_pkcs8()?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => {
            use std::io::Write;
            file.write_all(&pem)?;
            file.sync_all()?;
            Ok(pem)
        }
        // Another process made it first: use theirs.
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            for _ in 0..50 {
                let pem = std::fs::read(path)?;
                if !pem.is_empty() && PKey::private_key_from_pem(&pem).is_ok() {
                    return Ok(pem);
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(anyhow::anyhow!(
                "token signing key {} is unreadable",
                path.display()
            ))
        }
        Err(error) => Err(error.into()),
    }
}

/// An authenticated caller: a bearer token (or MaEVe's `x-api-key`), else a client
/// certificate verified on the HTTPS edge. As an extractor it answers 401 when the request
/// carries no valid credentials; it runs before any body extractor, so 401 comes before 400.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Principal);

impl Authenticated {
    pub fn role(&self) -> Role {
        Role::try_from(self.0.role).unwrap_or(Role::Unspecified)
    }

    /// 403 unless the caller has one of `roles` (admins pass every role check).
    pub fn require_role(&self, roles: &[Role]) -> Result<(), ApiError> {
        let role = self.role();
        if role == Role::Admin || roles.contains(&role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "role {} may not use this endpoint",
                role.name()
            )))
        }
    }

    /// 403 unless the caller is an admin.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        self.require_role(&[])
    }
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Authenticated, ApiError> {
        let Some(token) = presented_token(&parts.headers) else {
            // On the HTTPS edge a verified client certificate authenticates too.
            if let Some(certificate) = parts.extensions.get::<crate::tls::ClientCertificate>() {
                return Ok(Authenticated(certificate.principal()));
            }
            return Err(ApiError::unauthorized("missing access token"));
        };
        let principal = state.tokens.verify_cached(token).await?;
        Ok(Authenticated(principal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authority(dir: &Path) -> TokenAuthority {
        TokenAuthority::load_or_create(None, dir, "pnc-test", 60).expect("authority")
    }

    fn principal(role: Role) -> Principal {
        Principal {
            client_id: "client-1".into(),
            role: role as i32,
            wmis: vec!["PNC".into()],
            provider_ids: vec![],
            operator_ids: vec![],
        }
    }

    #[test]
    fn ok_issued_token_verifies_to_the_same_principal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tokens = authority(dir.path());
        let token = tokens
            .issue(&principal(Role::Oem), "an oem")
            .expect("issue");
        assert_eq!(tokens.verify(&token).expect("verify"), principal(Role::Oem));
    }

    #[test]
    fn ok_key_is_shared_through_the_data_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        let token = authority(dir.path())
            .issue(&principal(Role::Cpo), "cpo")
            .expect("issue");
        assert!(authority(dir.path()).verify(&token).is_ok());
    }

    #[test]
    fn fail_token_of_another_key() {
        let first = tempfile::tempdir().expect("tempdir");
        let second = tempfile::tempdir().expect("tempdir");
        let token = authority(first.path())
            .issue(&principal(Role::Admin), "admin")
            .expect("issue");
        let error = authority(second.path())
            .verify(&token)
            .expect_err("foreign key");
        assert_eq!(error.status, http::StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn fail_tampered_token() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tokens = authority(dir.path());
        let token = tokens.issue(&principal(Role::Cpo), "cpo").expect("issue");
        // Swap the payload for one claiming the admin role.
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = tokens.issue(&principal(Role::Admin), "x").expect("issue");
        let forged_payload = forged.split('.').nth(1).expect("payload");
        parts[1] = forged_payload;
        let tampered = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
        assert!(tokens.verify(&tampered).is_err());
    }

    #[test]
    fn fail_expired_token() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tokens = authority(dir.path());
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            iss: "pnc-test".into(),
            aud: "pnc-test".into(),
            sub: "c".into(),
            iat: now - 7200,
            exp: now - 3600,
            jti: "j".into(),
            role: "admin".into(),
            scope: String::new(),
            wmis: vec![],
            provider_ids: vec![],
            operator_ids: vec![],
            client_name: String::new(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &tokens.encoding)
            .expect("encode");
        let error = tokens.verify(&token).expect_err("expired");
        assert_eq!(error.messages, vec!["access token expired".to_string()]);
    }

    #[tokio::test]
    async fn ok_cached_verification_is_the_same_and_never_outlives_exp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tokens = authority(dir.path());
        let token = tokens.issue(&principal(Role::Cpo), "cpo").expect("issue");
        let key = VerifiedToken::of(&token);
        assert_eq!(
            tokens.verify_cached(&token).await.expect("first"),
            principal(Role::Cpo)
        );
        assert!(tokens.verified.get(&key).await.is_some(), "remembered");
        assert_eq!(
            tokens.verify_cached(&token).await.expect("cached"),
            principal(Role::Cpo)
        );
        // One changed signature byte is another token: verified afresh and refused.
        let mut tampered = token.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).expect("ascii");
        assert!(tokens.verify_cached(&tampered).await.is_err());
        // The lean paths' lookup: only the very token, whole, is known.
        assert!(tokens.already_verified(&token).await.is_some());
        for other in [
            tampered.clone(),
            token[..token.len() - 1].to_string(),
            format!("{token}A"),
        ] {
            assert!(tokens.already_verified(&other).await.is_none());
        }
        // Never printed, not even in a debug dump of the key.
        assert!(!format!("{key:?}").contains(&token[token.len() - 16..]));

        // Past exp but inside the validation leeway: accepted as before, never remembered.
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            iss: "pnc-test".into(),
            aud: "pnc-test".into(),
            sub: "client-1".into(),
            iat: now - 100,
            exp: now - 5,
            jti: "j".into(),
            role: "cpo".into(),
            scope: String::new(),
            wmis: vec![],
            provider_ids: vec![],
            operator_ids: vec![],
            client_name: String::new(),
        };
        let late = jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &tokens.encoding)
            .expect("encode");
        assert!(tokens.verify_cached(&late).await.is_ok());
        assert!(
            tokens
                .verified
                .get(&VerifiedToken::of(&late))
                .await
                .is_none()
        );
    }
}
