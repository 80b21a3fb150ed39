//! Response bodies: local answers, and upstream answers streamed through with the key
//! masked, usage read on the way, and the request accounted for when the body ends or the
//! client goes away.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use super::record::RequestRecord;
use super::redact::StreamRedactor;
use super::usage::UsageScanner;
use super::Shared;

/// The body of every answer the proxy gives.
pub enum ProxyBody {
    Local(Option<Bytes>),
    Upstream(Box<Streamed>),
}

impl ProxyBody {
    pub fn local(text: impl Into<Bytes>) -> Self {
        ProxyBody::Local(Some(text.into()))
    }
}

/// An upstream body on its way to the client.
pub struct Streamed {
    inner: Incoming,
    redactor: StreamRedactor,
    usage: UsageScanner,
    record: Option<RequestRecord>,
    shared: Arc<Shared>,
    ended: bool,
}

impl Streamed {
    pub fn new(
        inner: Incoming,
        redactor: StreamRedactor,
        usage: UsageScanner,
        record: RequestRecord,
        shared: Arc<Shared>,
    ) -> Self {
        Streamed {
            inner,
            redactor,
            usage,
            record: Some(record),
            shared,
            ended: false,
        }
    }
}

impl Drop for Streamed {
    fn drop(&mut self) {
        if let Some(mut record) = self.record.take() {
            record.usage = self.usage.finish();
            record.aborted = !self.ended && !self.inner.is_end_stream();
            record.finish(&self.shared);
        }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ProxyBody::Local(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            ProxyBody::Upstream(streamed) => streamed.poll_next(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Local(data) => data.is_none(),
            ProxyBody::Upstream(streamed) => streamed.ended,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Local(data) => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            // Masking keeps lengths, so the upstream's exact size stays exact.
            ProxyBody::Upstream(streamed) => streamed.inner.size_hint(),
        }
    }
}

impl Streamed {
    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        loop {
            if self.ended {
                return Poll::Ready(None);
            }
            match ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    let frame = match frame.into_data() {
                        Ok(data) => {
                            if let Some(record) = self.record.as_mut() {
                                record.first_byte.get_or_insert_with(Instant::now);
                            }
                            self.usage.feed(&data);
                            let out = self.redactor.feed(data);
                            if out.is_empty() {
                                continue;
                            }
                            Frame::data(out)
                        }
                        Err(frame) => frame,
                    };
                    return Poll::Ready(Some(Ok(frame)));
                }
                Some(Err(err)) => {
                    if let Some(record) = &self.record {
                        self.shared
                            .metrics
                            .upstream_error(record.route_label(&self.shared), "body");
                    }
                    return Poll::Ready(Some(Err(err)));
                }
                None => {
                    self.ended = true;
                    let tail = self.redactor.finish();
                    if !tail.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(tail))));
                    }
                    return Poll::Ready(None);
                }
            }
        }
    }
}
