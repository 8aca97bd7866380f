//! One typed error that crosses gRPC intact (after boulder's `errors` + `grpc/errors`).
//!
//! Services return [`PncError`]; it becomes a `tonic::Status` whose code is the closest gRPC
//! code and whose `x-pnc-error-kind` metadata keeps the exact [`ErrorKind`]. The receiving
//! side turns the `Status` back into the same `PncError`, and the gateway maps the kind once
//! more: to an HTTP status with OPCP's error body, or to an ISO 15118 ResponseCode.

use std::fmt;

use tonic::{Code, Status};

const KIND_METADATA_KEY: &str = "x-pnc-error-kind";

/// Stable error kinds. Their names are part of the wire contract between services: add
/// new ones at the end, never rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request is malformed or violates a rule of the data it carries (HTTP 400).
    InvalidArgument,
    /// No credentials, or credentials that do not check out (HTTP 401).
    Unauthenticated,
    /// Authenticated, but the role or scope does not allow this (HTTP 403).
    PermissionDenied,
    /// The thing asked for does not exist (HTTP 404).
    NotFound,
    /// A record with the same identity exists already (HTTP 409).
    AlreadyExists,
    /// The request is well-formed but the current state forbids it (HTTP 409/422).
    FailedPrecondition,
    /// A dependency (database, another service, an upstream) is down (HTTP 503).
    Unavailable,
    /// An upstream or dependency did not answer in time (HTTP 504).
    DeadlineExceeded,
    /// A bug or an unexpected condition; details stay in the log (HTTP 500).
    Internal,
    /// A certificate is outside its validity period.
    CertificateExpired,
    /// A certificate is revoked.
    CertificateRevoked,
    /// A certificate chain does not lead to a trusted root or is malformed.
    CertificateChain,
    /// A signature does not verify.
    Signature,
    /// The contract was cancelled by its eMSP.
    ContractCanceled,
    /// A request exceeds a size limit (HTTP 413).
    TooLarge,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 15] = [
        ErrorKind::InvalidArgument,
        ErrorKind::Unauthenticated,
        ErrorKind::PermissionDenied,
        ErrorKind::NotFound,
        ErrorKind::AlreadyExists,
        ErrorKind::FailedPrecondition,
        ErrorKind::Unavailable,
        ErrorKind::DeadlineExceeded,
        ErrorKind::Internal,
        ErrorKind::CertificateExpired,
        ErrorKind::CertificateRevoked,
        ErrorKind::CertificateChain,
        ErrorKind::Signature,
        ErrorKind::ContractCanceled,
        ErrorKind::TooLarge,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::NotFound => "not_found",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::FailedPrecondition => "failed_precondition",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::DeadlineExceeded => "deadline_exceeded",
            ErrorKind::Internal => "internal",
            ErrorKind::CertificateExpired => "certificate_expired",
            ErrorKind::CertificateRevoked => "certificate_revoked",
            ErrorKind::CertificateChain => "certificate_chain",
            ErrorKind::Signature => "signature",
            ErrorKind::ContractCanceled => "contract_canceled",
            ErrorKind::TooLarge => "too_large",
        }
    }

    pub fn parse(name: &str) -> Option<ErrorKind> {
        ErrorKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }

    /// The gRPC code a kind travels under; the metadata refines it.
    pub fn grpc_code(self) -> Code {
        match self {
            ErrorKind::InvalidArgument => Code::InvalidArgument,
            ErrorKind::Unauthenticated => Code::Unauthenticated,
            ErrorKind::PermissionDenied => Code::PermissionDenied,
            ErrorKind::NotFound => Code::NotFound,
            ErrorKind::AlreadyExists => Code::AlreadyExists,
            ErrorKind::FailedPrecondition
            | ErrorKind::CertificateExpired
            | ErrorKind::CertificateRevoked
            | ErrorKind::CertificateChain
            | ErrorKind::Signature
            | ErrorKind::ContractCanceled => Code::FailedPrecondition,
            ErrorKind::Unavailable => Code::Unavailable,
            ErrorKind::DeadlineExceeded => Code::DeadlineExceeded,
            ErrorKind::Internal => Code::Internal,
            ErrorKind::TooLarge => Code::ResourceExhausted,
        }
    }

    fn from_grpc_code(code: Code) -> ErrorKind {
        match code {
            Code::InvalidArgument | Code::OutOfRange => ErrorKind::InvalidArgument,
            Code::Unauthenticated => ErrorKind::Unauthenticated,
            Code::PermissionDenied => ErrorKind::PermissionDenied,
            Code::NotFound => ErrorKind::NotFound,
            Code::AlreadyExists => ErrorKind::AlreadyExists,
            Code::FailedPrecondition | Code::Aborted => ErrorKind::FailedPrecondition,
            Code::Unavailable | Code::Cancelled => ErrorKind::Unavailable,
            Code::DeadlineExceeded => ErrorKind::DeadlineExceeded,
            Code::ResourceExhausted => ErrorKind::TooLarge,
            _ => ErrorKind::Internal,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error with a stable kind and a message that is safe to show to the caller.
///
/// Messages of `Internal` errors are not shown to HTTP clients; log the details where
/// they happen and keep the message generic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct PncError {
    pub kind: ErrorKind,
    pub message: String,
}

impl PncError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> PncError {
        PncError {
            kind,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> PncError {
        PncError::new(ErrorKind::InvalidArgument, message)
    }

    pub fn not_found(message: impl Into<String>) -> PncError {
        PncError::new(ErrorKind::NotFound, message)
    }

    pub fn already_exists(message: impl Into<String>) -> PncError {
        PncError::new(ErrorKind::AlreadyExists, message)
    }

    pub fn permission_denied(message: impl Into<String>) -> PncError {
        PncError::new(ErrorKind::PermissionDenied, message)
    }

    pub fn unauthenticated(message: impl Into<String>) -> PncError {
        PncError::new(ErrorKind::Unauthenticated, message)
    }

    pub fn unavailable(message: impl Into<String>) -> PncError {
        PncError::new(ErrorKind::Unavailable, message)
    }

    pub fn internal(message: impl Into<String>) -> PncError {
        PncError::new(ErrorKind::Internal, message)
    }
}

impl From<PncError> for Status {
    fn from(error: PncError) -> Status {
        let mut status = Status::new(error.kind.grpc_code(), error.message);
        if let Ok(value) = error.kind.as_str().parse() {
            status.metadata_mut().insert(KIND_METADATA_KEY, value);
        }
        status
    }
}

impl From<Status> for PncError {
    fn from(status: Status) -> PncError {
        let kind = status
            .metadata()
            .get(KIND_METADATA_KEY)
            .and_then(|value| value.to_str().ok())
            .and_then(ErrorKind::parse)
            .unwrap_or_else(|| ErrorKind::from_grpc_code(status.code()));
        // A transport failure (connection refused, TLS) arrives as Unknown/Unavailable with
        // no kind: the dependency is down, which is what the caller needs to know.
        let kind = match (kind, status.code()) {
            (ErrorKind::Internal, Code::Unknown) if status.message().contains("transport") => {
                ErrorKind::Unavailable
            }
            (kind, _) => kind,
        };
        PncError::new(kind, status.message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_survives_a_grpc_round_trip() {
        for kind in ErrorKind::ALL {
            let original = PncError::new(kind, format!("a {kind} happened"));
            let status = Status::from(original.clone());
            assert_eq!(status.code(), kind.grpc_code());
            assert_eq!(PncError::from(status), original);
        }
    }

    #[test]
    fn a_status_from_elsewhere_maps_by_code() {
        let error = PncError::from(Status::not_found("no such root"));
        assert_eq!(error.kind, ErrorKind::NotFound);
        let error = PncError::from(Status::unavailable("connection refused"));
        assert_eq!(error.kind, ErrorKind::Unavailable);
    }

    #[test]
    fn kind_names_are_unique() {
        let mut names: Vec<_> = ErrorKind::ALL.iter().map(|kind| kind.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorKind::ALL.len());
    }
}
