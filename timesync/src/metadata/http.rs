//! Plain HTTP/1.1 to a metadata service through `ureq` (no TLS: the services are
//! link-local HTTP), with the time limits a booting node can afford and a few retries.
//!
//! No proxy is ever used (a proxy cannot reach the link-local service and would see
//! the credentials it serves), redirects are not followed, statuses are returned rather
//! than turned into errors, and a body is read up to a limit.

use std::time::Duration;

use super::MetadataError;

/// The largest body read: user data is at most 16 KiB on AWS, 64 KiB on Azure, 256 KiB
/// on GCE.
pub const MAX_BODY: u64 = 1024 * 1024;

#[derive(Debug, Clone, Copy)]
pub struct HttpOptions {
    pub connect_timeout: Duration,
    /// The limit on one whole request, connection to last byte.
    pub request_timeout: Duration,
    /// Attempts per request (a refused connection or 5xx is retried; the service may
    /// not be up yet at boot).
    pub tries: u32,
    pub retry_pause: Duration,
}

impl Default for HttpOptions {
    fn default() -> HttpOptions {
        HttpOptions {
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(2),
            tries: 3,
            retry_pause: Duration::from_millis(200),
        }
    }
}

/// An answer: status, the headers the caller asked to see, body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    headers: Vec<(String, String)>,
}

impl Reply {
    /// A header's value (names are case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub struct Http {
    agent: ureq::Agent,
    options: HttpOptions,
}

impl Http {
    pub fn new(options: HttpOptions) -> Http {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(options.connect_timeout))
            .timeout_global(Some(options.request_timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .build();
        Http {
            agent: config.into(),
            options,
        }
    }

    pub fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<Reply, MetadataError> {
        self.request("GET", url, headers)
    }

    pub fn put(&self, url: &str, headers: &[(&str, &str)]) -> Result<Reply, MetadataError> {
        self.request("PUT", url, headers)
    }

    fn request(
        &self,
        method: &'static str,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<Reply, MetadataError> {
        let tries = self.options.tries.max(1);
        let mut last = None;
        for attempt in 1..=tries {
            if attempt > 1 {
                std::thread::sleep(self.options.retry_pause);
            }
            match self.once(method, url, headers) {
                Ok(reply) if reply.status >= 500 && attempt < tries => {
                    last = None;
                    continue;
                }
                Ok(reply) => return Ok(reply),
                Err(e) => last = Some(e),
            }
        }
        match last {
            Some(source) => Err(MetadataError::Request {
                method,
                url: url.to_owned(),
                tries,
                source: Box::new(source),
            }),
            // Only 5xx until the last try, which returned; not reached.
            None => Err(MetadataError::Status {
                method,
                url: url.to_owned(),
                status: 500,
            }),
        }
    }

    fn once(
        &self,
        method: &'static str,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<Reply, ureq::Error> {
        let mut response = if method == "PUT" {
            let mut request = self.agent.put(url);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            request.send_empty()?
        } else {
            let mut request = self.agent.get(url);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            request.call()?
        };
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()?;
        Ok(Reply {
            status,
            body,
            headers,
        })
    }
}
