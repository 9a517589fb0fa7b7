//! Client deadlines answer `DeadlineExceeded`.
//!
//! A gRPC client sends its deadline as the `grpc-timeout` header. tonic's server enforces
//! it too, but answers `Cancelled` ("Timeout expired") when it fires, and the CRI (critest's
//! "public image should timeout", the kubelet's retries) expects `DeadlineExceeded`. This
//! layer sits inside tonic's own timeout and is always polled before it, and it checks the
//! clock on every poll, so by the time tonic's timer could fire this layer has already
//! answered with the right code. The handler's blocking work is not interrupted (a pull
//! that is half-way through finishes in the background and is kept).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;
use tonic::body::Body;
use tonic::codegen::http;

/// The header a gRPC client puts its deadline in.
const GRPC_TIMEOUT: &str = "grpc-timeout";

/// Parses a `grpc-timeout` value: at most 8 digits and a unit (`H`, `M`, `S`, `m`, `u`,
/// `n`). Anything else is `None`, as if the client had sent no deadline.
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at_checked(value.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The [`tower::Layer`] adding [`Deadline`] to the router.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeadlineLayer;

impl<S> tower::Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Deadline { inner }
    }
}

/// Answers `DeadlineExceeded` once the request's `grpc-timeout` has passed.
#[derive(Debug, Clone)]
pub struct Deadline<S> {
    inner: S,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for Deadline<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let timeout = request
            .headers()
            .get(GRPC_TIMEOUT)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout);
        // Taken before tonic's own timer starts (it calls us first), so ours is never later.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let response = self.inner.call(request);
        let Some(deadline) = deadline else {
            return Box::pin(response);
        };
        let path_timeout = timeout.unwrap_or_default();
        Box::pin(async move {
            let mut response = std::pin::pin!(response);
            let mut sleep = std::pin::pin!(tokio::time::sleep_until(deadline));
            std::future::poll_fn(|cx| {
                if let Poll::Ready(done) = response.as_mut().poll(cx) {
                    return Poll::Ready(done);
                }
                if Instant::now() >= deadline || sleep.as_mut().poll(cx).is_ready() {
                    let status = tonic::Status::deadline_exceeded(format!(
                        "the client's deadline ({path_timeout:?}) passed before the call finished"
                    ));
                    return Poll::Ready(Ok(status.into_http()));
                }
                Poll::Pending
            })
            .await
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn grpc_timeout_units() {
        assert_eq!(parse_grpc_timeout("1m"), Some(Duration::from_millis(1)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(
            parse_grpc_timeout("99999999n"),
            Some(Duration::from_nanos(99999999))
        );
        assert_eq!(parse_grpc_timeout("7u"), Some(Duration::from_micros(7)));
        for bad in ["", "m", "123456789m", "1x", "-1m", "1.5S", "ä", "1mm"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn a_passed_deadline_answers_deadline_exceeded() {
        use tower::{Layer, ServiceExt};
        // A handler that never answers: only the deadline can end the call.
        let never = tower::service_fn(|_: http::Request<()>| {
            std::future::pending::<Result<http::Response<Body>, std::convert::Infallible>>()
        });
        let service = DeadlineLayer.layer(never);
        let request = http::Request::builder()
            .header(GRPC_TIMEOUT, "1m")
            .body(())
            .unwrap();
        let response = service.oneshot(request).await.unwrap();
        let status = tonic::Status::from_header_map(response.headers()).unwrap();
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
    }

    #[tokio::test]
    async fn an_answer_within_the_deadline_passes_through() {
        use tower::{Layer, ServiceExt};
        let ok = tower::service_fn(|_: http::Request<()>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(Body::empty()))
        });
        let request = http::Request::builder()
            .header(GRPC_TIMEOUT, "10S")
            .body(())
            .unwrap();
        let response = DeadlineLayer.layer(ok).oneshot(request).await.unwrap();
        assert!(tonic::Status::from_header_map(response.headers()).is_none());
    }

    proptest! {
        #[test]
        fn any_header_parses_or_is_ignored(value in "\\PC{0,12}") {
            if let Some(d) = parse_grpc_timeout(&value) {
                prop_assert!(d <= Duration::from_secs(99_999_999 * 3600));
            }
        }
    }
}
