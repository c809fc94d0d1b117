//! The HTTP side of imports: the archive part of a multipart upload, and the RestResult JSON
//! of an import report as Nacos sends it.

use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::rest_result;
use crate::services::config::archive::{ImportFailure, ImportReport, ImportedKey};

/// The bytes of the part named `field` in a `multipart/form-data` body.
pub async fn multipart_file(content_type: &str, body: Bytes, field: &str) -> Result<Bytes, String> {
    if content_type.trim().is_empty() {
        return Err(format!(
            "the request has no Content-Type; send the archive as multipart/form-data with a '{field}' part"
        ));
    }
    let is_form_data = content_type
        .split(';')
        .next()
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("multipart/form-data"));
    if !is_form_data {
        return Err(format!(
            "the request is '{content_type}', not multipart/form-data; send the archive as a '{field}' part"
        ));
    }
    let boundary = multer::parse_boundary(content_type)
        .map_err(|e| format!("the multipart Content-Type has no usable boundary: {e}"))?;
    let stream = axum::body::Body::from(body).into_data_stream();
    let mut multipart = multer::Multipart::new(stream, boundary);
    loop {
        let part = multipart
            .next_field()
            .await
            .map_err(|e| format!("the multipart body is malformed: {e}"))?;
        let Some(part) = part else {
            return Err(format!(
                "the multipart body has no '{field}' part (the archive to import)"
            ));
        };
        if part.name() == Some(field) {
            return part
                .bytes()
                .await
                .map_err(|e| format!("cannot read the '{field}' part of the multipart body: {e}"));
        }
    }
}

/// RestResult with HTTP 200, the failure code, and `data: {succCount: 0}` as Nacos sends.
pub fn failure_response(failure: ImportFailure) -> Response {
    axum::Json(serde_json::json!({
        "code": failure.code,
        "message": failure.message,
        "data": { "succCount": 0 },
    }))
    .into_response()
}

fn key_json(key: &ImportedKey) -> serde_json::Value {
    serde_json::json!({ "dataId": key.data_id, "group": key.group })
}

/// The JSON `data` of the report: `{succCount, skipCount, failData?, skipData?,
/// unrecognizedCount?, unrecognizedData?}`; empty lists are left out.
pub fn report_data(report: &ImportReport) -> serde_json::Value {
    let mut data = serde_json::Map::new();
    data.insert("succCount".into(), report.succ_count.into());
    data.insert("skipCount".into(), report.skip_count.into());
    let keys = |list: &[ImportedKey]| -> serde_json::Value { list.iter().map(key_json).collect() };
    if !report.fail_data.is_empty() {
        data.insert("failData".into(), keys(&report.fail_data));
    }
    if !report.skip_data.is_empty() {
        data.insert("skipData".into(), keys(&report.skip_data));
    }
    if !report.unrecognized.is_empty() {
        data.insert("unrecognizedCount".into(), report.unrecognized.len().into());
        data.insert(
            "unrecognizedData".into(),
            report
                .unrecognized
                .iter()
                .map(|name| serde_json::json!({ "itemName": name }))
                .collect(),
        );
    }
    serde_json::Value::Object(data)
}

pub fn report_response(report: ImportReport) -> Response {
    match report.failure {
        Some(failure) => failure_response(failure),
        None => rest_result(report_data(&report), Some("import finished")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_report_json() {
        let report = ImportReport {
            succ_count: 1,
            skip_count: 0,
            fail_data: vec![ImportedKey {
                data_id: "d".into(),
                group: "g".into(),
            }],
            skip_data: Vec::new(),
            unrecognized: vec!["x".into()],
            failure: None,
        };
        assert_eq!(
            report_data(&report),
            serde_json::json!({
                "succCount": 1,
                "skipCount": 0,
                "failData": [{"dataId": "d", "group": "g"}],
                "unrecognizedCount": 1,
                "unrecognizedData": [{"itemName": "x"}],
            })
        );
    }

    #[tokio::test]
    async fn multipart_extraction() {
        let body = Bytes::from_static(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"policy\"\r\n\r\nSKIP\r\n\
              --XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.zip\"\r\n\
              Content-Type: application/zip\r\n\r\nPK\x03\x04data\r\n--XyZ--\r\n",
        );
        let file = multipart_file("multipart/form-data; boundary=XyZ", body.clone(), "file")
            .await
            .expect("file part");
        assert_eq!(&file[..], b"PK\x03\x04data");
        let missing = multipart_file("multipart/form-data; boundary=XyZ", body.clone(), "other")
            .await
            .expect_err("no such part");
        assert!(missing.contains("'other'"), "{missing}");
        let wrong = multipart_file("application/zip", body.clone(), "file")
            .await
            .expect_err("not multipart");
        assert!(wrong.contains("not multipart/form-data"), "{wrong}");
        let none = multipart_file("", body, "file").await.expect_err("no type");
        assert!(none.contains("no Content-Type"), "{none}");
        let broken = multipart_file(
            "multipart/form-data; boundary=XyZ",
            Bytes::from_static(
                b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nunterminated",
            ),
            "file",
        )
        .await
        .expect_err("truncated body");
        assert!(broken.contains("multipart"), "{broken}");
    }
}
