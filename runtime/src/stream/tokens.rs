//! One-time tokens for streaming URLs, as the kubelet's streaming server keeps them: the
//! CRI call (Exec, Attach, PortForward) stores the request under a fresh random token and
//! returns a URL naming it; the first HTTP request with that token takes the request out
//! of the cache. A token is never valid twice, and one not used within its time to live
//! (a minute by default, like the kubelet's cache) is gone. The cache is bounded, so a
//! client that asks for URLs without ever using them cannot grow it without end.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a token stays valid when the configuration does not say.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);
/// At most this many unused tokens at once (the kubelet's limit).
pub const MAX_TOKENS: usize = 1000;

/// Why a token could not be issued.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// The system's random source failed.
    #[error("cannot read random bytes for a streaming token: {0}")]
    Random(String),
    /// [`MAX_TOKENS`] unexpired tokens are waiting to be used.
    #[error("too many pending streaming requests ({0}); try again later")]
    Full(usize),
}

/// A clock, so that tests can move time without sleeping.
pub trait Clock: Send + Sync {
    fn now(&self) -> Instant;
}

/// The real monotonic clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// The cache of pending requests by token.
pub struct TokenCache<T> {
    entries: Mutex<HashMap<String, (Instant, T)>>,
    ttl: Duration,
    clock: Box<dyn Clock>,
}

impl<T> TokenCache<T> {
    /// A cache whose tokens live `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self::with_clock(ttl, Box::new(SystemClock))
    }

    /// A cache reading time from `clock`.
    pub fn with_clock(ttl: Duration, clock: Box<dyn Clock>) -> Self {
        TokenCache {
            entries: Mutex::new(HashMap::new()),
            ttl,
            clock,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, T)>> {
        // A panic while holding the lock leaves a consistent map: take it anyway.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stores `value` under a new token (32 random bytes, URL-safe base64) and returns it.
    pub fn insert(&self, value: T) -> Result<String, TokenError> {
        let mut bytes = [0u8; 32];
        getrandom::getrandom(&mut bytes).map_err(|e| TokenError::Random(e.to_string()))?;
        use base64::Engine;
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let now = self.clock.now();
        let mut entries = self.lock();
        entries.retain(|_, (expires, _)| *expires > now);
        if entries.len() >= MAX_TOKENS {
            return Err(TokenError::Full(entries.len()));
        }
        entries.insert(token.clone(), (now + self.ttl, value));
        Ok(token)
    }

    /// Takes the request stored under `token`: `None` if the token is unknown, was used
    /// already or has expired.
    pub fn consume(&self, token: &str) -> Option<T> {
        let now = self.clock.now();
        let (expires, value) = self.lock().remove(token)?;
        (expires > now).then_some(value)
    }

    /// Unused, unexpired tokens.
    pub fn len(&self) -> usize {
        let now = self.clock.now();
        self.lock().values().filter(|(e, _)| *e > now).count()
    }

    /// Whether no token is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A clock that moves only when told.
    #[derive(Clone)]
    struct FakeClock(Arc<Mutex<Instant>>);

    impl FakeClock {
        fn advance(&self, by: Duration) {
            *self.0.lock().unwrap() += by;
        }
    }

    impl Clock for FakeClock {
        fn now(&self) -> Instant {
            *self.0.lock().unwrap()
        }
    }

    fn cache() -> (TokenCache<u32>, FakeClock) {
        let clock = FakeClock(Arc::new(Mutex::new(Instant::now())));
        (
            TokenCache::with_clock(Duration::from_secs(60), Box::new(clock.clone())),
            clock,
        )
    }

    #[test]
    fn a_token_is_used_once() {
        let (cache, _) = cache();
        let token = cache.insert(7).unwrap();
        assert_eq!(token.len(), 43);
        assert!(token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(cache.consume(&token), Some(7));
        assert_eq!(cache.consume(&token), None);
        assert_eq!(cache.consume("not-a-token"), None);
        assert_eq!(cache.consume(""), None);
    }

    #[test]
    fn tokens_differ() {
        let (cache, _) = cache();
        let a = cache.insert(1).unwrap();
        let b = cache.insert(2).unwrap();
        assert_ne!(a, b);
        assert_eq!(cache.consume(&b), Some(2));
        assert_eq!(cache.consume(&a), Some(1));
    }

    #[test]
    fn a_token_expires() {
        let (cache, clock) = cache();
        let early = cache.insert(1).unwrap();
        let late = cache.insert(2).unwrap();
        clock.advance(Duration::from_secs(59));
        assert_eq!(cache.consume(&early), Some(1));
        clock.advance(Duration::from_secs(1));
        assert_eq!(cache.consume(&late), None);
        assert!(cache.is_empty());
    }

    #[test]
    fn the_cache_is_bounded_and_expired_tokens_make_room() {
        let (cache, clock) = cache();
        for i in 0..MAX_TOKENS {
            cache.insert(i as u32).unwrap();
        }
        assert_eq!(cache.insert(0), Err(TokenError::Full(MAX_TOKENS)));
        clock.advance(Duration::from_secs(61));
        assert!(cache.insert(0).is_ok());
        assert_eq!(cache.len(), 1);
    }
}
