#include "http/tls.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include <openssl/err.h>
#include <openssl/pem.h>

namespace uas {

namespace {

[[noreturn]] void refuse(const char* name, const std::string& path, const std::string& why) {
  ERR_clear_error(); // OpenSSL's queue holds the details; the message says what to fix
  throw config_error{std::string{name} + "=\"" + path + "\" is invalid: " + why};
}

// Opens a file for OpenSSL to read, or says why it cannot be read.
std::unique_ptr<FILE, int (*)(FILE*)> open_file(const char* name, const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> file{std::fopen(path.c_str(), "r"), std::fclose};
  if (!file)
    refuse(name, path, std::string{"cannot read it: "} + std::strerror(errno));
  return file;
}

// OpenSSL would ask the terminal for an encrypted key's passphrase; a service has no one to ask.
int no_passphrase(char*, int, int, void*) {
  return -1;
}

} // namespace

void use_tls_files(SSL_CTX& ctx, const config& cfg) {
  const auto& cert = cfg.tls_cert_file;
  const auto& key = cfg.tls_key_file;
  open_file("TLS_CERT_FILE", cert);
  if (SSL_CTX_use_certificate_chain_file(&ctx, cert.c_str()) != 1)
    refuse("TLS_CERT_FILE", cert, "no PEM certificate in it");
  auto key_file = open_file("TLS_KEY_FILE", key);
  std::unique_ptr<EVP_PKEY, void (*)(EVP_PKEY*)> private_key{
    PEM_read_PrivateKey(key_file.get(), nullptr, no_passphrase, nullptr), EVP_PKEY_free};
  if (!private_key)
    refuse("TLS_KEY_FILE", key,
           "no PEM private key in it (a key encrypted with a passphrase is not supported: "
           "`openssl pkey -in KEY -out PLAIN` decrypts it)");
  if (SSL_CTX_use_PrivateKey(&ctx, private_key.get()) != 1 || SSL_CTX_check_private_key(&ctx) != 1)
    refuse("TLS_KEY_FILE", key, "it is not the key of the certificate in TLS_CERT_FILE");
  // TLS 1.0 and 1.1 are deprecated (RFC 8996); compression invites CRIME, and a client that
  // renegotiates again and again costs the server a handshake each time.
  SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(&ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION
                              | SSL_OP_CIPHER_SERVER_PREFERENCE);
}

void check_tls_files(const config& cfg) {
  std::unique_ptr<SSL_CTX, void (*)(SSL_CTX*)> ctx{SSL_CTX_new(TLS_server_method()), SSL_CTX_free};
  if (!ctx)
    throw std::runtime_error{"cannot create an OpenSSL context"};
  use_tls_files(*ctx, cfg);
}

} // namespace uas
