//! Export and import archives (`?export=true`, `?exportV2=true`, `?import=true`).

use axum::response::Response;
use bytes::Bytes;
use nacos_core::{ConfigItem, Operator};

use crate::App;
use crate::http::{ApiError, rest_result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportPolicy {
    Abort,
    Skip,
    Overwrite,
}

/// One config read from an archive.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportItem {
    pub group: String,
    pub data_id: String,
    pub content: String,
    pub config_type: Option<String>,
    pub app_name: Option<String>,
    pub desc: Option<String>,
}

/// An archive that could not be read at all: Nacos's RestResult error codes.
#[derive(Debug, Clone)]
pub struct ImportFailure {
    pub code: i32,
    pub message: String,
}

impl ImportFailure {
    pub fn into_rest_result(self) -> Response {
        axum::Json(serde_json::json!({ "code": self.code, "message": self.message, "data": null }))
            .into_response()
    }
}

use axum::response::IntoResponse;

#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    pub succ_count: usize,
    pub skip_count: usize,
    pub fail_data: Vec<(String, String)>,
    pub skip_data: Vec<(String, String)>,
}

impl ImportReport {
    pub fn into_rest_result(self) -> Response {
        rest_result(serde_json::json!({"succCount": self.succ_count}), None)
    }
}

pub fn export_zip(_items: &[ConfigItem], _v2: bool) -> Result<Vec<u8>, String> {
    Err("export is not implemented yet".to_string())
}

pub async fn multipart_file(
    _content_type: &str,
    _body: Bytes,
    _field: &str,
) -> Result<Bytes, String> {
    Err("import is not implemented yet".to_string())
}

pub fn parse_import(_zip: &[u8]) -> Result<Vec<ImportItem>, ImportFailure> {
    Err(ImportFailure {
        code: 100004,
        message: "import is not implemented yet".to_string(),
    })
}

pub async fn import_items(
    _app: &App,
    _namespace: &str,
    _items: Vec<ImportItem>,
    _policy: ImportPolicy,
    _operator: &Operator,
) -> Result<ImportReport, ApiError> {
    Err(ApiError::NotImplemented(
        "import is not implemented yet".to_string(),
    ))
}
