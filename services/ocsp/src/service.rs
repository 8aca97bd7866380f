//! The gRPC face of the OCSP service.

use pnc_proto::ocsp::v1::{RespondRequest, RespondResponse, ocsp_server::Ocsp};
use tonic::{Request, Response, Status};

/// OCSPResponse with responseStatus `unauthorized` (RFC 6960 §2.3): the answer for a
/// certificate whose issuer pnc does not know. No issuer is known until the cache and
/// responder are configured with some.
const UNAUTHORIZED: [u8; 5] = [0x30, 0x03, 0x0a, 0x01, 0x06];

#[derive(Debug, Default)]
pub struct OcspService;

#[tonic::async_trait]
impl Ocsp for OcspService {
    async fn respond(
        &self,
        _request: Request<RespondRequest>,
    ) -> Result<Response<RespondResponse>, Status> {
        Ok(Response::new(RespondResponse {
            ocsp_response_der: UNAUTHORIZED.to_vec(),
        }))
    }
}
