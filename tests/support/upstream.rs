//! A stand-in for an upstream API (the real one cannot be reached from tests), on loopback:
//! it records what it received, can insist on a set of keys, echoes keys back (to test
//! masking), streams server-sent events one at a time as the test releases them, and can
//! be slow (`/v1/slow`) or unavailable (`/v1/unavailable`).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::json;

/// One request as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body_len: usize,
    pub body: String,
}

struct State {
    seen: Mutex<Vec<Seen>>,
    accepted: Mutex<Vec<String>>,
    gate: tokio::sync::Semaphore,
}

/// The running stand-in; stopped when dropped.
pub struct Upstream {
    pub addr: SocketAddr,
    state: Arc<State>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

type Body = BoxBody<Bytes, Infallible>;

impl Upstream {
    pub fn start() -> Upstream {
        let state = Arc::new(State {
            seen: Mutex::default(),
            accepted: Mutex::default(),
            gate: tokio::sync::Semaphore::new(0),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let served = state.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    tokio::select! {
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            let state = served.clone();
                            let service = hyper::service::service_fn(move |request| answer(state.clone(), request));
                            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service));
                        }
                        _ = &mut stopped => break,
                    }
                }
            });
            runtime.shutdown_timeout(Duration::from_millis(100));
        });
        Upstream {
            addr,
            state,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answer 401 unless `Authorization` is one of these (empty: accept anything).
    pub fn accept_only(&self, values: &[String]) {
        *self.state.accepted.lock().unwrap() = values.to_vec();
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// Lets the event stream send its next event.
    pub fn release(&self) {
        self.state.gate.add_permits(1);
    }
}

/// An HTTP/1.0 upstream as simple servers are (Python's `http.server`): answers each of
/// `answers` connections with `body` as an event stream delimited by closing the connection.
pub fn http10(answers: usize, body: &'static str) -> SocketAddr {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(answers) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let _ = write!(
                stream,
                "HTTP/1.0 200 OK\r\ncontent-type: text/event-stream\r\n\r\n{body}"
            );
        }
    });
    addr
}

fn full(status: u16, content_type: &str, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)).boxed())
        .unwrap()
}

/// A body whose chunks come from a task, each sent as its own write.
fn streamed(
    content_type: &str,
    produce: impl FnOnce(tokio::sync::mpsc::Sender<Bytes>) -> tokio::task::JoinHandle<()>,
) -> Response<Body> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    produce(tx);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(Frame::data(chunk)), rx))
    });
    Response::builder()
        .header("content-type", content_type)
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .unwrap()
}

async fn answer(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let headers: BTreeMap<String, String> = request
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    state.seen.lock().unwrap().push(Seen {
        method,
        path: path.clone(),
        headers: headers.clone(),
        body_len: body.len(),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let auth = headers.get("authorization").cloned().unwrap_or_default();
    let accepted = state.accepted.lock().unwrap().clone();
    if !accepted.is_empty() && !accepted.contains(&auth) {
        let echo = json!({ "error": { "message": format!("Incorrect API key provided: {auth}") } });
        return Ok(full(401, "application/json", echo.to_string()));
    }
    let response = match path.as_str() {
        "/v1/echo" => {
            let body = json!({
                "path": path,
                "headers": headers,
                "body_len": body.len(),
                "usage": { "prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8 },
            });
            let mut response = full(200, "application/json", body.to_string());
            response
                .headers_mut()
                .insert("x-echo", auth.parse().unwrap());
            response
        }
        "/v1/split" => streamed("text/plain", move |tx| {
            tokio::spawn(async move {
                let half = auth.len() / 2;
                let _ = tx
                    .send(Bytes::from(format!("key: {}", &auth[..half])))
                    .await;
                tokio::time::sleep(Duration::from_millis(30)).await;
                let _ = tx.send(Bytes::from(format!("{} end", &auth[half..]))).await;
            })
        }),
        "/v1/sse" => streamed("text/event-stream", move |tx| {
            tokio::spawn(async move {
                for n in 0..3 {
                    if n > 0 {
                        state.gate.acquire().await.unwrap().forget();
                    }
                    let _ = tx
                        .send(Bytes::from(format!("data: {{\"n\":{n}}}\n\n")))
                        .await;
                }
                let usage = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":11,\"total_tokens\":18}}\n\ndata: [DONE]\n\n";
                let _ = tx.send(Bytes::from(usage)).await;
            })
        }),
        // A chat completion stream: the usage chunk only when the body asks for it.
        "/v1/chat/completions" => {
            let asked = String::from_utf8_lossy(&body).contains("\"include_usage\":true");
            streamed("text/event-stream", move |tx| {
                tokio::spawn(async move {
                    let _ = tx
                        .send(Bytes::from(
                            "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n",
                        ))
                        .await;
                    if asked {
                        let _ = tx.send(Bytes::from("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":30}}\n\n")).await;
                    }
                    let _ = tx.send(Bytes::from("data: [DONE]\n\n")).await;
                })
            })
        }
        // The key, echoed as an upstream might mangle it, and compressed against the rules.
        "/v1/mangled" => {
            use base64::Engine;
            let key = auth.strip_prefix("Bearer ").unwrap_or_default().to_string();
            let escaped: String = key
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_string()
                    } else {
                        format!("\\u{:04x}", c as u32)
                    }
                })
                .collect();
            let body = format!(
                "{} {} {}",
                key.to_uppercase(),
                base64::engine::general_purpose::STANDARD.encode(&key),
                escaped
            );
            full(200, "text/plain", body)
        }
        "/v1/gzip" => {
            let mut response = full(200, "text/plain", auth.clone());
            response
                .headers_mut()
                .insert("content-encoding", "gzip".parse().unwrap());
            response
        }
        "/v1/slow" => {
            tokio::time::sleep(Duration::from_secs(2)).await;
            full(200, "application/json", "{}".to_string())
        }
        "/v1/unavailable" => {
            let mut response = full(
                503,
                "application/json",
                json!({ "error": { "message": "overloaded" } }).to_string(),
            );
            response
                .headers_mut()
                .insert("x-upstream-note", "busy".parse().unwrap());
            response
        }
        _ => full(
            404,
            "application/json",
            json!({ "error": "no such path" }).to_string(),
        ),
    };
    Ok(response)
}

/// A fake upstream key, built at run time so that no scanner mistakes it for a real one.
pub fn fake_key(tag: &str) -> String {
    format!("sk-{}-{}", "fake", tag.repeat(6))
}
