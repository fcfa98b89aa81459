//! Printing results: a manifest as YAML or pretty JSON, and stdout writes that survive a closed pipe.

use std::io::Write;

use serde_json::Value;

/// Write `bytes` to stdout in one go. A reader that went away (`| head`) is not an error.
pub fn to_stdout(bytes: impl AsRef<[u8]>) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes.as_ref()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Output format of a generated manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ManifestFormat {
    /// YAML (kubectl create -f accepts it).
    #[default]
    Yaml,
    /// Pretty-printed JSON.
    Json,
}

/// Render `value` completely (so nothing reaches stdout when rendering fails).
pub fn render(value: &Value, format: ManifestFormat) -> anyhow::Result<String> {
    let mut text = match format {
        ManifestFormat::Yaml => {
            serde_saphyr::to_string(value).map_err(|e| anyhow::anyhow!("rendering YAML: {e}"))?
        }
        ManifestFormat::Json => serde_json::to_string_pretty(value)?,
    };
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn yaml_keeps_version_like_strings_as_strings() {
        let v = serde_json::json!({"version": "1.30", "port": 22, "cidr": "10.244.0.0/16", "yes": "yes"});
        let text = render(&v, ManifestFormat::Yaml).unwrap();
        let back: Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(back, v, "{text}");
    }

    #[test]
    fn json_is_pretty_and_newline_terminated() {
        let text = render(&serde_json::json!({"a": 1}), ManifestFormat::Json).unwrap();
        assert_eq!(text, "{\n  \"a\": 1\n}\n");
    }
}
