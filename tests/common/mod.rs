//! Shared helpers for integration tests: a real gateway on a loopback port, temp stores, HTTP.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use pdd::clock::{Clock, SystemClock};
use pdd::config::Config;
use pdd::gateway::Gateway;
use pdd::store::SledStore;
use tokio::sync::oneshot;

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "pdd-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A gateway served on 127.0.0.1:<ephemeral port>.
pub struct Running {
    pub addr: SocketAddr,
    pub gw: Arc<Gateway>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    pub dir: TempDir,
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) -> TempDir {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        let dir = std::mem::replace(&mut self.dir, TempDir(PathBuf::new()));
        drop(self);
        dir
    }
}

pub async fn start(config: Config) -> Running {
    start_with_clock(config, Arc::new(SystemClock)).await
}

pub async fn start_with_clock(mut config: Config, clock: Arc<dyn Clock>) -> Running {
    let dir = TempDir::new("gw");
    config.data = dir.0.join("data");
    start_in(config, clock, dir).await
}

/// Starts on an existing data directory (to test restarts).
pub async fn start_in(mut config: Config, clock: Arc<dyn Clock>, dir: TempDir) -> Running {
    if config.data.as_os_str().is_empty() {
        config.data = dir.0.join("data");
    }
    let registry = config.build_registry().expect("registry");
    let store = SledStore::open(&config.data).expect("store");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let gw = Arc::new(Gateway::new(config, registry, Arc::new(store), clock));
    let (tx, rx) = oneshot::channel();
    let g = gw.clone();
    let task = tokio::spawn(async move {
        let _ = pdd::server::serve(g, listener, async {
            let _ = rx.await;
        })
        .await;
    });
    Running {
        addr,
        gw,
        stop: Some(tx),
        task: Some(task),
        dir,
    }
}

pub struct Reply {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
}

/// POSTs raw bytes with a text/xml content type, over a fresh HTTP/1.1 connection.
pub async fn post(url: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> Reply {
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let client: Client<_, Full<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut req = hyper::Request::post(url)
        .header("Content-Type", "text/xml; charset=utf-8")
        .header("SOAPAction", "\"\"");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(Full::new(bytes::Bytes::from(body)))
        .expect("request");
    let resp = client.request(req).await.expect("HTTP request");
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    Reply {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
        headers,
    }
}

/// The shared reference folder beside the project, if present.
pub fn shared() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared");
    p.is_dir().then_some(p)
}
