// HTTPS: TLS_CERT_FILE and TLS_KEY_FILE loaded into OpenSSL, TLS 1.2 the oldest version spoken.
#pragma once

#include <openssl/ssl.h>

#include "core/config.hpp"

namespace uas {

// Loads the certificate (chain) and its private key into `ctx` and sets the protocol floor.
// Throws config_error naming the variable whose file cannot be read, holds no PEM certificate
// or key, or whose key does not match the certificate.
void use_tls_files(SSL_CTX& ctx, const config& cfg);

// The same check on a context of its own, for start-up: wrong files stop the service before it
// connects to anything.
void check_tls_files(const config& cfg);

} // namespace uas
