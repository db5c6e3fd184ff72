// Pure text functions behind Postgres::WriteConfig/WriteHba and the parsers of
// PostgreSQL's own files and tool output. No I/O: unit-tested without a server.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "pg/types.h"

namespace tandem::pg {

// File names inside the data directory.
inline constexpr const char* kTandemConf = "tandem.conf";
inline constexpr const char* kPassFile = "tandem.pgpass";
inline constexpr const char* kIncludeLine = "include 'tandem.conf'";

// A postgresql.conf string literal: 'it''s' (quote doubled, backslash doubled).
// Newlines, carriage returns and NUL cannot be represented: kInvalidArgument.
Result<std::string> QuoteConfValue(const std::string& value);

// A libpq conninfo value: bare when it is [A-Za-z0-9_.\-/:@]+, else
// single-quoted with ' and \ backslash-escaped. Never fails.
std::string QuoteConninfoValue(const std::string& value);

// "key=value key=value" with values quoted by QuoteConninfoValue; empty values
// are left out.
std::string BuildConninfo(const std::vector<std::pair<std::string, std::string>>& kv);

// One line of a libpq password file matching any host, port and database:
// "*:*:*:user:password\n" with ':' and '\' escaped. kInvalidArgument when the
// user or password holds a newline or NUL (the message never contains them).
Result<std::string> PassFileLine(const std::string& user, const std::string& password);

// A GUC name for Settings::extra: [A-Za-z_][A-Za-z0-9_.]*, at most 63 chars.
bool IsValidGucName(const std::string& name);
// A role name we accept (replication user): [A-Za-z_][A-Za-z0-9_]*, at most 63 chars.
bool IsValidRoleName(const std::string& name);
// A physical slot name: [a-z0-9_]+, at most 63 chars.
bool IsValidSlotName(const std::string& name);

// The libpq parameters of a connection to a peer's PostgreSQL under `tls`:
// none when off; permissive: sslmode=require, sslcert, sslkey (no sslrootcert:
// with one, libpq would verify as verify-ca); enforce: sslmode=verify-full
// (verify_hostname) or verify-ca, sslrootcert, sslcert, sslkey. Only paths:
// never key material.
std::vector<std::pair<std::string, std::string>> ClientTlsParams(const TlsSettings& tls);

// The value of primary_conninfo for a standby of `source`; the password is
// not in it: libpq reads it from `passfile`. TLS parameters from `tls`.
std::string PrimaryConninfo(const Source& source, const std::string& passfile,
                            const TlsSettings& tls = {});

// The whole tandem.conf. `socket_dir` is the unix_socket_directories value.
// For a standby, `passfile` is referenced from primary_conninfo. Rejects
// (kInvalidArgument) bad extra names, extra names Tandem manages, values with
// newlines, out-of-range numbers, a standby source without host or user.
Result<std::string> RenderConfig(const Settings& settings, const std::string& socket_dir,
                                 const std::optional<Source>& standby_of,
                                 const std::string& passfile);

// The whole pg_hba.conf. Every peer address must be an IPv4 or IPv6 address
// (no names, no masks): kInvalidArgument otherwise. Duplicates are merged.
// With TLS (see TlsMode) replication and the superuser from peers are
// `hostssl` only, and a plain (`hostnossl`) attempt is rejected by name.
Result<std::string> RenderHba(const std::vector<HbaPeer>& peers,
                              const std::string& replication_user, TlsMode tls = TlsMode::kOff);

// The whole pg_ident.conf: map `tandem` from the client certificate's CN
// (kClientCertCn) to the replication user and to the superuser.
std::string RenderIdent(const std::string& replication_user);

// "a.b.c.d" -> "a.b.c.d/32", "::1" -> "::1/128"; nullopt for anything else.
std::optional<std::string> HostCidr(const std::string& address);

// postgresql.conf with `include 'tandem.conf'` as its last line, exactly once.
std::string EnsureIncludeLast(const std::string& postgresql_conf);

// Removes every line that sets one of `keys` (as `key = ...` or `key=...`,
// leading spaces allowed). Used on postgresql.auto.conf.
std::string RemoveConfKeys(const std::string& content, const std::vector<std::string>& keys);

// The first line of postmaster.pid as a pid; nullopt when junk.
std::optional<int> ParsePostmasterPid(const std::string& content);

// pg_controldata output (LC_ALL=C).
Result<ControlData> ParseControlData(const std::string& output);

// Timeline from a WAL file name ("000000020000000000000003" -> 2).
std::optional<uint32_t> TimelineFromWalFileName(const std::string& name);

// The last `n` non-empty lines of a program's output, joined by " | ".
std::string OutputTail(const std::string& output, size_t n = 10);

}  // namespace tandem::pg
