//! A loopback TCP proxy that injects faults a real server cannot produce: a stalled
//! connection, a response cut off half-way, a slow answer. Stops when dropped.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Forward everything.
    Pass,
    /// Forward the request, never answer.
    Stall,
    /// Forward this many bytes of the answer, then close the connection.
    CutAfter(usize),
    /// Hold the answer back this long.
    Delay(Duration),
    /// Hold back every piece of every answer on the connection this long.
    DelayEach(Duration),
    /// Answer the first request with this HTTP status (and `Retry-After` seconds, if
    /// given) without reaching the server, then close: a standby mid-election, a gateway
    /// error, a rate limit, on demand.
    Status(u16, Option<u64>),
    /// Answer with this redirect status to the same path on another server (a standby
    /// or a load balancer pointing at the active node).
    Redirect(u16, std::net::SocketAddr),
}

pub struct FaultProxy {
    /// `http://LISTEN:PORT` (or https, if the upstream speaks TLS: bytes pass unchanged).
    pub address: String,
    pub connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    listen: std::net::SocketAddr,
}

impl FaultProxy {
    /// Proxies `listen_ip`:(free port) to `upstream`, applying `fault` to the first
    /// `faulty` connections and passing the rest.
    pub fn start(
        listen_ip: &str,
        upstream: std::net::SocketAddr,
        fault: Fault,
        faulty: usize,
        scheme: &str,
    ) -> Self {
        let listener = TcpListener::bind((listen_ip, 0)).unwrap();
        let listen = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicUsize::new(0));
        let thread = {
            let stop = stop.clone();
            let connections = connections.clone();
            std::thread::spawn(move || {
                let mut workers = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            let number = connections.fetch_add(1, Ordering::SeqCst);
                            let fault = if number < faulty { fault } else { Fault::Pass };
                            let stop = stop.clone();
                            workers.push(std::thread::spawn(move || {
                                let _ = relay(client, upstream, fault, &stop);
                            }));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
                for worker in workers {
                    let _ = worker.join();
                }
            })
        };
        FaultProxy {
            address: format!("{scheme}://{listen}"),
            connections,
            stop,
            thread: Some(thread),
            listen,
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.listen, Duration::from_millis(100));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Copies both ways; the fault applies to the answer. Every wait is bounded by the stop
/// flag and a 30 s ceiling.
fn relay(
    client: TcpStream,
    upstream: std::net::SocketAddr,
    fault: Fault,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    match fault {
        Fault::Status(status, retry_after) => {
            let header = retry_after.map(|s| format!("Retry-After: {s}"));
            return answer(client, status, |_| header.clone());
        }
        Fault::Redirect(status, to) => {
            return answer(client, status, |target| {
                Some(format!("Location: http://{to}{target}"))
            });
        }
        _ => {}
    }
    let server = TcpStream::connect(upstream)?;
    let tick = Some(Duration::from_millis(50));
    client.set_read_timeout(tick)?;
    server.set_read_timeout(tick)?;
    let ceiling = Instant::now() + Duration::from_secs(30);
    let (mut client_in, mut server_out) = (client.try_clone()?, server.try_clone()?);
    let done = Arc::new(AtomicBool::new(false));
    let upload = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 16384];
            while !done.load(Ordering::SeqCst) && Instant::now() < ceiling {
                match client_in.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(n) => {
                        if server_out.write_all(&buffer[..n]).is_err() {
                            break;
                        }
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => break,
                }
            }
        })
    };
    let (mut server_in, mut client_out) = (server, client);
    let mut buffer = [0u8; 16384];
    let mut forwarded = 0usize;
    let mut delayed = false;
    while !stop.load(Ordering::SeqCst) && Instant::now() < ceiling {
        match server_in.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => match fault {
                Fault::Pass | Fault::Status(..) | Fault::Redirect(..) => {
                    client_out.write_all(&buffer[..n])?
                }
                Fault::Stall => {}
                Fault::Delay(delay) => {
                    if !delayed {
                        std::thread::sleep(delay);
                        delayed = true;
                    }
                    client_out.write_all(&buffer[..n])?;
                }
                Fault::DelayEach(delay) => {
                    std::thread::sleep(delay);
                    client_out.write_all(&buffer[..n])?;
                }
                Fault::CutAfter(limit) => {
                    let take = n.min(limit - forwarded);
                    client_out.write_all(&buffer[..take])?;
                    forwarded += take;
                    if forwarded >= limit {
                        break;
                    }
                }
            },
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    done.store(true, Ordering::SeqCst);
    let _ = client_out.shutdown(Shutdown::Both);
    let _ = server_in.shutdown(Shutdown::Both);
    let _ = upload.join();
    Ok(())
}

/// Reads one request's head (bounded) and answers it with `status`, Vault's error shape and
/// the header `header` makes from the request target.
fn answer(
    mut client: TcpStream,
    status: u16,
    header: impl Fn(&str) -> Option<String>,
) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut head = Vec::new();
    let mut buffer = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 1 << 20 {
        match client.read(&mut buffer)? {
            0 => break,
            n => head.extend_from_slice(&buffer[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let target = head.split_whitespace().nth(1).unwrap_or("/");
    let body = format!("{{\"errors\":[\"injected {status}\"]}}");
    let extra = header(target)
        .map(|h| format!("{h}\r\n"))
        .unwrap_or_default();
    write!(
        client,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
        body.len()
    )?;
    client.flush()?;
    client.shutdown(Shutdown::Both)
}
