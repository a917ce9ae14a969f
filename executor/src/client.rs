//! Signed requests to the coordinator ([`zkinfer_coordinator::auth`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use alloy::signers::local::PrivateKeySigner;
use zkinfer_coordinator::auth;

use crate::{Error, Result};

/// A coordinator client that signs every request with the executor's key.
#[derive(Clone)]
pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
    key: PrivateKeySigner,
    /// The last nonce used: nonces are milliseconds, bumped to stay strictly increasing.
    nonce: Arc<AtomicU64>,
}

impl Client {
    pub(crate) fn new(base: &str, key: PrivateKeySigner) -> Self {
        Client { http: reqwest::Client::new(), base: base.trim_end_matches('/').to_string(), key, nonce: Arc::new(AtomicU64::new(0)) }
    }

    /// The executor's name: its address.
    pub(crate) fn name(&self) -> String {
        auth::address_string(self.key.address())
    }

    fn next_nonce(&self) -> u64 {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let mut last = self.nonce.load(Ordering::SeqCst);
        loop {
            let next = now.max(last + 1);
            match self.nonce.compare_exchange(last, next, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }

    /// A signed POST.
    pub(crate) async fn post(&self, path: &str, body: Vec<u8>) -> std::result::Result<reqwest::Response, String> {
        let headers = auth::sign(&self.key, "POST", path, &body, self.next_nonce()).map_err(|e| e.to_string())?;
        let mut req = self.http.post(format!("{}{path}", self.base)).body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send().await.map_err(|e| e.to_string())
    }

    /// An unsigned GET of a public JSON resource.
    pub(crate) async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T> {
        let r = self.http.get(format!("{}{path}", self.base)).send().await.map_err(|e| Error::Coordinator(e.to_string()))?;
        let status = r.status();
        let body = r.bytes().await.map_err(|e| Error::Coordinator(e.to_string()))?;
        if !status.is_success() {
            return Err(Error::Coordinator(format!("GET {path}: {status} {}", String::from_utf8_lossy(&body))));
        }
        serde_json::from_slice(&body).map_err(|e| Error::Coordinator(format!("GET {path}: {e}")))
    }

    /// A signed POST that must succeed.
    pub(crate) async fn expect(&self, path: &str, body: Vec<u8>) -> Result<()> {
        let r = self.post(path, body).await.map_err(Error::Coordinator)?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(Error::Coordinator(format!("{path}: {} {}", r.status(), r.text().await.unwrap_or_default())))
        }
    }
}
