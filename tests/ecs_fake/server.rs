//! A fake ECS endpoint: HTTP/1.1 on 127.0.0.1, the awsJson1_1 protocol
//! (`POST /`, `X-Amz-Target: AmazonEC2ContainerServiceV20141113.<Op>`),
//! answering from a stateful model (`ops.rs`). A per-test hook sees each call
//! first and may answer it itself (throttling, a FAILED rollout) or change the
//! model; every call is recorded with its body so tests assert what was sent.
#![allow(dead_code)]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::model::Model;
use crate::ops;

/// One scripted answer: a JSON body, or an AWS error envelope.
pub enum Reply {
    Ok(Value),
    Err {
        status: u16,
        code: &'static str,
        message: String,
    },
}

pub fn aws_error(code: &'static str, message: &str) -> Reply {
    Reply::Err {
        status: 400,
        code,
        message: message.to_string(),
    }
}

/// Sees every call before the model; `Some` answers it instead.
pub type Hook = Box<dyn FnMut(&mut Model, &str, &Value) -> Option<Reply> + Send>;

struct State {
    model: Model,
    hook: Hook,
    calls: Vec<(String, Value)>,
}

pub struct FakeEcs {
    pub url: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeEcs {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeEcs {
    /// A fake answering from `model` alone.
    pub async fn start(model: Model) -> FakeEcs {
        Self::with_hook(model, |_, _, _| None).await
    }

    pub async fn with_hook(
        model: Model,
        hook: impl FnMut(&mut Model, &str, &Value) -> Option<Reply> + Send + 'static,
    ) -> FakeEcs {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake ECS");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let state = Arc::new(Mutex::new(State {
            model,
            hook: Box::new(hook),
            calls: Vec::new(),
        }));
        let state2 = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = state2.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(req, state.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        FakeEcs { url, state, task }
    }

    /// Operation names in the order they were called.
    pub fn calls(&self) -> Vec<String> {
        let state = self.state.lock().unwrap();
        state.calls.iter().map(|(op, _)| op.clone()).collect()
    }

    /// The request bodies of every call of `op`, in order.
    pub fn requests(&self, op: &str) -> Vec<Value> {
        let state = self.state.lock().unwrap();
        state
            .calls
            .iter()
            .filter(|(o, _)| o == op)
            .map(|(_, body)| body.clone())
            .collect()
    }

    pub fn count(&self, op: &str) -> usize {
        self.requests(op).len()
    }

    /// Reads or changes the model between calls.
    pub fn model<T>(&self, f: impl FnOnce(&mut Model) -> T) -> T {
        f(&mut self.state.lock().unwrap().model)
    }
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<Mutex<State>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let op = target.rsplit('.').next().unwrap_or_default().to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let reply = {
        let mut state = state.lock().unwrap();
        state.calls.push((op.clone(), body.clone()));
        let State { model, hook, .. } = &mut *state;
        match hook(model, &op, &body) {
            Some(reply) => reply,
            None => ops::answer(model, &op, &body),
        }
    };
    let (status, payload) = match reply {
        Reply::Ok(v) => (200, v),
        Reply::Err {
            status,
            code,
            message,
        } => (status, json!({ "__type": code, "message": message })),
    };
    let resp = Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amzn-requestid", "fake-request")
        .body(Full::new(Bytes::from(payload.to_string())))
        .unwrap();
    Ok(resp)
}
