//! Development certificates: a throw-away CA and serving certificates signed by it (rcgen, ring).
//!
//! Used by `tkeha-webhook --gen-certs DIR` (demo and benchmark) and by the TLS tests, which
//! verify the server against the CA exactly as the API server does with `caBundle`.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SerialNumber,
};

/// Why a certificate could not be generated or written.
#[derive(Debug, thiserror::Error)]
pub enum CertGenError {
    /// The key or certificate could not be generated.
    #[error("generating a certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// A file could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A self-signed certificate authority that can issue serving certificates.
#[derive(Debug)]
pub struct CertAuthority {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A serving certificate and its private key, PEM encoded.
#[derive(Debug, Clone)]
pub struct ServingCert {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// PKCS#8 PEM. Secret: never print or log it.
    pub key_pem: String,
    /// DER of the certificate, to compare with what a TLS peer presents.
    pub cert_der: Vec<u8>,
}

impl CertAuthority {
    /// A fresh CA named `common_name` (new key every call).
    pub fn new(common_name: &str) -> Result<Self, CertGenError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = name(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        Ok(Self { issuer })
    }

    /// The CA certificate in PEM (what goes into a webhook's `caBundle`, base64 encoded).
    pub fn ca_pem(&self) -> String {
        self.issuer.pem()
    }

    /// Issue a serving certificate for `hosts` (DNS names and/or IP addresses), with a new key
    /// and the given serial number.
    pub fn issue(
        &self,
        common_name: &str,
        hosts: &[String],
        serial: u64,
    ) -> Result<ServingCert, CertGenError> {
        let mut params = CertificateParams::new(hosts.to_vec())?;
        params.distinguished_name = name(common_name);
        params.serial_number = Some(SerialNumber::from_slice(&serial.to_be_bytes()));
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(ServingCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().to_vec(),
        })
    }
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

/// Files written by [`write_dev_certs`], named as in a Kubernetes TLS Secret.
#[derive(Debug, Clone)]
pub struct DevCertPaths {
    /// The CA certificate (`ca.crt`): the `caBundle` of a webhook configuration.
    pub ca_cert: PathBuf,
    /// The serving certificate (`tls.crt`).
    pub tls_cert: PathBuf,
    /// Its private key (`tls.key`, mode 0600).
    pub tls_key: PathBuf,
}

/// Write `ca.crt`, `tls.crt` and `tls.key` (mode 0600) into `dir` for a server reachable as `hosts`.
pub fn write_dev_certs(dir: &Path, hosts: &[String]) -> Result<DevCertPaths, CertGenError> {
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CertGenError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(write_err(dir))?;
    let ca = CertAuthority::new("tkeha-webhook dev CA")?;
    let serving = ca.issue("tkeha-webhook", hosts, 1)?;
    let paths = DevCertPaths {
        ca_cert: dir.join("ca.crt"),
        tls_cert: dir.join("tls.crt"),
        tls_key: dir.join("tls.key"),
    };
    std::fs::write(&paths.ca_cert, ca.ca_pem()).map_err(write_err(&paths.ca_cert))?;
    std::fs::write(&paths.tls_cert, &serving.cert_pem).map_err(write_err(&paths.tls_cert))?;
    write_private(&paths.tls_key, serving.key_pem.as_bytes()).map_err(write_err(&paths.tls_key))?;
    Ok(paths)
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn issues_distinct_certificates_with_pem_output() {
        let ca = CertAuthority::new("test CA").unwrap();
        let a = ca.issue("a", &["localhost".into()], 1).unwrap();
        let b = ca.issue("b", &["127.0.0.1".into()], 2).unwrap();
        assert!(ca.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(a.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(a.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert_ne!(a.cert_der, b.cert_der);
        assert_ne!(a.key_pem, b.key_pem);
    }

    #[test]
    fn writes_secret_shaped_files_with_private_key_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let paths = write_dev_certs(dir.path(), &["localhost".into()]).unwrap();
        assert!(
            std::fs::read_to_string(&paths.ca_cert)
                .unwrap()
                .contains("CERTIFICATE")
        );
        assert!(
            std::fs::read_to_string(&paths.tls_cert)
                .unwrap()
                .contains("CERTIFICATE")
        );
        let mode = std::fs::metadata(&paths.tls_key)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
