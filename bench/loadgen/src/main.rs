//! Benchmark helpers for `bench/proxy.sh`.
//!
//! - `loadgen upstream ADDR`: a minimal upstream answering every request with a small JSON
//!   body carrying OpenAI-style `usage`, as fast as hyper can.
//! - `loadgen rate URL RATE SECONDS CONNECTIONS [HEADER]`: sends RATE requests per second
//!   on a fixed schedule (open loop) and prints throughput and latency percentiles. A request
//!   that is late because an earlier answer was slow is measured from its scheduled time, so
//!   a stall is not hidden by sending fewer requests (no coordinated omission).
//! - `loadgen flood ADDR CONNECTIONS SOURCES SECONDS`: holds CONNECTIONS idle connections
//!   (no byte sent) from SOURCES loopback addresses (127.0.1.1, 127.0.1.2, ...), opening a
//!   new one whenever one is closed, for SECONDS (slowloris).
//! - `loadgen probe URL COUNT [HEADER]`: COUNT requests one after another, each on a new
//!   connection, with a 2 s deadline; prints latency percentiles and failures.
//! - `loadgen race URL REQUESTS HEADER BODY`: REQUESTS POSTs of BODY at once, each on its
//!   own connection; prints how many were answered 200.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

const ANSWER: &str = r#"{"id":"bench","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"ok"}}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}"#;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("upstream") if args.len() == 2 => upstream(&args[1]),
        Some("rate") if args.len() >= 5 => rate(&args[1..]),
        Some("flood") if args.len() == 5 => flood(&args[1..]),
        Some("probe") if args.len() >= 3 => probe(&args[1..]),
        Some("race") if args.len() == 5 => race(&args[1..]),
        _ => {
            eprintln!("usage: loadgen upstream ADDR | loadgen rate URL RATE SECONDS CONNECTIONS ['Name: value'] | loadgen flood ADDR CONNECTIONS SOURCES SECONDS | loadgen probe URL COUNT ['Name: value'] | loadgen race URL REQUESTS 'Name: value' BODY");
            std::process::exit(2);
        }
    }
}

fn upstream(address: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(address).await.unwrap();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let service =
                hyper::service::service_fn(|request: Request<hyper::body::Incoming>| async move {
                    let _ = request.into_body().collect().await;
                    Ok::<_, Infallible>(
                        Response::builder()
                            .header("content-type", "application/json")
                            .body(Full::new(Bytes::from_static(ANSWER.as_bytes())))
                            .unwrap(),
                    )
                });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
}

fn rate(args: &[String]) {
    let url: hyper::Uri = args[0].parse().expect("a URL");
    let rate: f64 = args[1].parse().expect("a rate");
    let seconds: f64 = args[2].parse().expect("seconds");
    let connections: usize = args[3].parse().expect("connections");
    let header = args.get(4).map(|h| {
        let (name, value) = h.split_once(':').expect("'Name: value'");
        (name.trim().to_string(), value.trim().to_string())
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (latencies, errors, elapsed) = runtime.block_on(async move {
        let start = Instant::now() + Duration::from_millis(100);
        let per_connection = rate / connections as f64;
        let total_per_connection = (per_connection * seconds) as usize;
        let tasks: Vec<_> = (0..connections)
            .map(|c| {
                let url = url.clone();
                let header = header.clone();
                // Spread the connections' schedules evenly over one interval.
                let offset = Duration::from_secs_f64(c as f64 / rate);
                tokio::spawn(async move {
                    let authority = url.authority().unwrap().to_string();
                    let stream = tokio::net::TcpStream::connect(&authority).await.unwrap();
                    stream.set_nodelay(true).unwrap();
                    let (mut sender, connection) =
                        hyper::client::conn::http1::handshake(TokioIo::new(stream))
                            .await
                            .unwrap();
                    tokio::spawn(connection);
                    let interval = Duration::from_secs_f64(1.0 / per_connection);
                    let mut latencies = Vec::with_capacity(total_per_connection);
                    let mut errors = 0u64;
                    for i in 0..total_per_connection {
                        let scheduled = start + offset + interval * i as u32;
                        // Latency counts from the scheduled time when an earlier slow answer
                        // made this request late (no coordinated omission), but not the
                        // timer's own millisecond granularity when it slept.
                        let sent = if Instant::now() < scheduled {
                            tokio::time::sleep_until(scheduled.into()).await;
                            Instant::now()
                        } else {
                            scheduled
                        };
                        let mut request = Request::get(url.path()).header("host", &authority);
                        if let Some((name, value)) = &header {
                            request = request.header(name, value);
                        }
                        let request = request.body(Empty::<Bytes>::new()).unwrap();
                        let ok = match sender.send_request(request).await {
                            Ok(response) => {
                                let status = response.status();
                                response.into_body().collect().await.is_ok() && status.is_success()
                            }
                            Err(_) => false,
                        };
                        if ok {
                            latencies.push(sent.elapsed().as_micros() as u64);
                        } else {
                            errors += 1;
                        }
                    }
                    (latencies, errors)
                })
            })
            .collect();
        let mut all = Vec::new();
        let mut errors = 0;
        for task in tasks {
            let (latencies, e) = task.await.unwrap();
            all.extend(latencies);
            errors += e;
        }
        (all, errors, start.elapsed())
    });
    let mut latencies = latencies;
    latencies.sort_unstable();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!(
        "requests={} errors={} rps={:.0} p50_us={} p99_us={} max_us={}",
        latencies.len(),
        errors,
        latencies.len() as f64 / elapsed.as_secs_f64(),
        at(0.50),
        at(0.99),
        latencies.last().copied().unwrap_or(0)
    );
}

fn parse_header(text: Option<&String>) -> Option<(String, String)> {
    text.map(|h| {
        let (name, value) = h.split_once(':').expect("'Name: value'");
        (name.trim().to_string(), value.trim().to_string())
    })
}

fn flood(args: &[String]) {
    let address: std::net::SocketAddr = args[0].parse().expect("IP:PORT");
    let connections: usize = args[1].parse().expect("connections");
    let sources: u8 = args[2].parse().expect("sources");
    let seconds: f64 = args[3].parse().expect("seconds");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let end = Instant::now() + Duration::from_secs_f64(seconds);
        let opened = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let tasks: Vec<_> = (0..connections)
            .map(|c| {
                let source = std::net::Ipv4Addr::new(127, 0, 1, 1 + (c % sources as usize) as u8);
                let opened = opened.clone();
                tokio::spawn(async move {
                    while Instant::now() < end {
                        let socket = tokio::net::TcpSocket::new_v4().unwrap();
                        socket.bind((source, 0).into()).unwrap();
                        match socket.connect(address).await {
                            Ok(mut stream) => {
                                opened.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                let mut byte = [0u8; 1];
                                let _ = tokio::time::timeout_at(
                                    end.into(),
                                    tokio::io::AsyncReadExt::read(&mut stream, &mut byte),
                                )
                                .await;
                            }
                            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            let _ = task.await;
        }
        println!(
            "opened={}",
            opened.load(std::sync::atomic::Ordering::Relaxed)
        );
    });
}

fn probe(args: &[String]) {
    let url: hyper::Uri = args[0].parse().expect("a URL");
    let count: usize = args[1].parse().expect("count");
    let header = parse_header(args.get(2));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (mut latencies, failures) = runtime.block_on(async move {
        let authority = url.authority().unwrap().to_string();
        let mut latencies = Vec::new();
        let mut failures = 0u64;
        for _ in 0..count {
            let started = Instant::now();
            let attempt = async {
                let stream = tokio::net::TcpStream::connect(&authority).await.ok()?;
                let (mut sender, connection) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream))
                        .await
                        .ok()?;
                tokio::spawn(connection);
                let mut request = Request::get(url.path()).header("host", &authority);
                if let Some((name, value)) = &header {
                    request = request.header(name, value);
                }
                let response = sender
                    .send_request(request.body(Empty::<Bytes>::new()).unwrap())
                    .await
                    .ok()?;
                let ok = response.status().is_success();
                response.into_body().collect().await.ok()?;
                ok.then_some(())
            };
            match tokio::time::timeout(Duration::from_secs(2), attempt).await {
                Ok(Some(())) => latencies.push(started.elapsed().as_micros() as u64),
                _ => failures += 1,
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (latencies, failures)
    });
    latencies.sort_unstable();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!(
        "answered={} failed={} p50_us={} p99_us={} max_us={}",
        latencies.len(),
        failures,
        at(0.50),
        at(0.99),
        latencies.last().copied().unwrap_or(0)
    );
}

fn race(args: &[String]) {
    let url: hyper::Uri = args[0].parse().expect("a URL");
    let requests: usize = args[1].parse().expect("requests");
    let header = parse_header(args.get(2)).unwrap();
    let body = args[3].clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let ok = runtime.block_on(async move {
        let authority = url.authority().unwrap().to_string();
        // Connect every client first, then send all requests at once.
        let mut senders = Vec::new();
        for _ in 0..requests {
            let stream = tokio::net::TcpStream::connect(&authority).await.unwrap();
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .unwrap();
            tokio::spawn(connection);
            senders.push(sender);
        }
        let tasks: Vec<_> = senders
            .into_iter()
            .map(|mut sender| {
                let request = Request::post(url.path())
                    .header("host", &authority)
                    .header(&header.0, &header.1)
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body.clone())))
                    .unwrap();
                tokio::spawn(async move {
                    match sender.send_request(request).await {
                        Ok(response) => {
                            let ok = response.status().is_success();
                            let _ = response.into_body().collect().await;
                            ok
                        }
                        Err(_) => false,
                    }
                })
            })
            .collect();
        let mut ok = 0;
        for task in tasks {
            if task.await.unwrap_or(false) {
                ok += 1;
            }
        }
        ok
    });
    println!("answered={ok}");
}
