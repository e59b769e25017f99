//! `s3clients CLIENT ENDPOINT BUCKET PREFIX SRC`: PUTs every regular file under SRC as
//! `PREFIX/relative/path` into BUCKET at ENDPOINT (path-style, http), each with the
//! user metadata tandem writes (`mtime`, `mode`), 64 requests in flight on a 2-thread
//! runtime, as tandem's first mirror does. CLIENT: `aws-sdk-s3` or `object_store`.
//! Credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, region us-east-1.
//! Prints the number of objects; exits 1 on the first failure.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::stream::{self, StreamExt};

const IN_FLIGHT: usize = 64;

fn files(root: &Path) -> Vec<(String, PathBuf, String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else { continue };
        for e in rd.flatten() {
            let Ok(md) = e.path().symlink_metadata() else { continue };
            if md.is_dir() {
                stack.push(e.path());
            } else if md.is_file() {
                let rel =
                    e.path().strip_prefix(root).map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
                let mtime = format!("{}.{:09}", md.mtime(), md.mtime_nsec());
                out.push((rel, e.path(), mtime, format!("{:o}", md.mode())));
            }
        }
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, client, endpoint, bucket, prefix, src] = &args[..] else {
        eprintln!("usage: s3clients aws-sdk-s3|object_store ENDPOINT BUCKET PREFIX SRC");
        std::process::exit(2);
    };
    let key_id = std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_default();
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_default();
    let list = files(Path::new(src));
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let n = list.len();
    let failed = rt.block_on(async {
        match client.as_str() {
            "aws-sdk-s3" => {
                let conf = aws_sdk_s3::config::Builder::new()
                    .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
                    .region(aws_sdk_s3::config::Region::new("us-east-1"))
                    .endpoint_url(endpoint)
                    .force_path_style(true)
                    .credentials_provider(aws_sdk_s3::config::Credentials::new(
                        key_id, secret, None, None, "env",
                    ))
                    .request_checksum_calculation(
                        aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired,
                    )
                    .build();
                let c = aws_sdk_s3::Client::from_conf(conf);
                let c = &c;
                stream::iter(list)
                    .map(|(rel, path, mtime, mode)| async move {
                        let body = tokio::fs::read(&path).await.map_err(|e| e.to_string())?;
                        c.put_object()
                            .bucket(bucket)
                            .key(format!("{prefix}/{rel}"))
                            .metadata("mtime", mtime)
                            .metadata("mode", mode)
                            .body(body.into())
                            .send()
                            .await
                            .map(|_| ())
                            .map_err(|e| format!("{rel}: {e:?}"))
                    })
                    .buffer_unordered(IN_FLIGHT)
                    .collect::<Vec<Result<(), String>>>()
                    .await
                    .into_iter()
                    .find_map(Result::err)
            }
            "object_store" => {
                use object_store::{Attribute, Attributes, ObjectStore, PutOptions, PutPayload};
                let store = object_store::aws::AmazonS3Builder::new()
                    .with_endpoint(endpoint)
                    .with_bucket_name(bucket)
                    .with_region("us-east-1")
                    .with_access_key_id(key_id)
                    .with_secret_access_key(secret)
                    .with_allow_http(true)
                    .with_virtual_hosted_style_request(false)
                    .build()
                    .expect("object_store");
                let store = Arc::new(store);
                stream::iter(list)
                    .map(|(rel, path, mtime, mode)| {
                        let store = store.clone();
                        async move {
                            let body = tokio::fs::read(&path).await.map_err(|e| e.to_string())?;
                            let mut attributes = Attributes::new();
                            attributes.insert(Attribute::Metadata("mtime".into()), mtime.into());
                            attributes.insert(Attribute::Metadata("mode".into()), mode.into());
                            let opts = PutOptions { attributes, ..Default::default() };
                            let key = object_store::path::Path::from(format!("{prefix}/{rel}"));
                            store
                                .put_opts(&key, PutPayload::from(bytes::Bytes::from(body)), opts)
                                .await
                                .map(|_| ())
                                .map_err(|e| format!("{rel}: {e}"))
                        }
                    })
                    .buffer_unordered(IN_FLIGHT)
                    .collect::<Vec<Result<(), String>>>()
                    .await
                    .into_iter()
                    .find_map(Result::err)
            }
            other => Some(format!("unknown client {other}")),
        }
    });
    if let Some(e) = failed {
        eprintln!("s3clients: {e}");
        std::process::exit(1);
    }
    println!("{n}");
}
