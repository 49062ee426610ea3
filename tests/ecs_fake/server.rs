//! A scripted fake ECS endpoint: HTTP/1.1 on 127.0.0.1, the awsJson1_1
//! protocol (`POST /`, `X-Amz-Target: AmazonEC2ContainerServiceV20141113.<Op>`),
//! answering each call from a per-test closure.

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

type Script = Box<dyn FnMut(&str, &Value) -> Reply + Send>;

pub struct FakeEcs {
    pub url: String,
    calls: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeEcs {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeEcs {
    pub async fn start(script: impl FnMut(&str, &Value) -> Reply + Send + 'static) -> FakeEcs {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake ECS");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let script: Arc<Mutex<Script>> = Arc::new(Mutex::new(Box::new(script)));
        let calls = Arc::new(Mutex::new(Vec::new()));
        let (script2, calls2) = (script.clone(), calls.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (script, calls) = (script2.clone(), calls2.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(req, script.clone(), calls.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        FakeEcs { url, calls, task }
    }

    /// Operation names in the order they were called.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    pub fn count(&self, op: &str) -> usize {
        self.calls().iter().filter(|c| *c == op).count()
    }
}

async fn handle(
    req: Request<Incoming>,
    script: Arc<Mutex<Script>>,
    calls: Arc<Mutex<Vec<String>>>,
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
    calls.lock().unwrap().push(op.clone());
    let reply = (script.lock().unwrap())(&op, &body);
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
