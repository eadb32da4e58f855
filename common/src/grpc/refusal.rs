//! Refusing a gRPC call: [`refuse`] logs the domain error with the request's id (as an error when
//! it is the server's fault, with its cause), counts it under its reason, and converts it through
//! the catalogue into the `tonic::Status` the caller reads, carrying the request id.

use latchkey_proto::ApiError;
use tonic::Status;
use tonic::metadata::MetadataMap;

/// A domain error a gRPC server may answer with: it maps onto the catalogue, and says whether it
/// is the server's own fault (logged as an error with its cause) or a refusal of the request.
pub trait Refusal: std::fmt::Display + Into<ApiError> {
    /// True for failures on our side (internal errors, an unreachable database, a value failing
    /// its integrity check): those are logged with their cause before the caller gets the
    /// catalogue's answer.
    fn is_fault(&self) -> bool;
}

/// The one conversion of a domain error into the status `service` ("auth", "settings") answers
/// with: logged with the request id (the cause only for faults), counted in
/// `latchkey_failures_total`, and carrying `request_id` in its `ErrorInfo` metadata.
pub fn refuse(service: &'static str, metadata: &MetadataMap, error: impl Refusal) -> Status {
    let request_id = request_id(metadata);
    if error.is_fault() {
        tracing::error!(%request_id, error = %error, "request failed");
    }
    let api: ApiError = error.into();
    tracing::info!(%request_id, reason = %api.reason, "request refused");
    crate::metrics::global().failure(service, api.reason);
    api.with_metadata("request_id", request_id).to_status()
}

/// The request id a call carries in `x-request-id` (set by the request-id layer when the caller
/// sent none), or `-`.
pub fn request_id(metadata: &MetadataMap) -> String {
    metadata
        .get(latchkey_proto::REQUEST_ID_METADATA)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_proto::Reason;

    #[derive(Debug)]
    struct Refused(Reason, bool);

    impl std::fmt::Display for Refused {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "refused with {}", self.0)
        }
    }

    impl From<Refused> for ApiError {
        fn from(refused: Refused) -> Self {
            ApiError::new(refused.0, "Do the thing.")
        }
    }

    impl Refusal for Refused {
        fn is_fault(&self) -> bool {
            self.1
        }
    }

    #[test]
    fn a_refusal_travels_with_its_reason_and_the_request_id() {
        let mut metadata = MetadataMap::new();
        metadata.insert(
            latchkey_proto::REQUEST_ID_METADATA,
            "req-7".parse().unwrap(),
        );
        for (reason, fault) in [(Reason::TokenExpired, false), (Reason::Internal, true)] {
            let status = refuse("test", &metadata, Refused(reason, fault));
            let back = ApiError::from_status(&status);
            assert_eq!(back.reason, reason);
            assert_eq!(back.metadata["request_id"], "req-7");
        }
    }

    #[test]
    fn a_call_without_a_request_id_reads_as_a_dash() {
        assert_eq!(request_id(&MetadataMap::new()), "-");
    }
}
