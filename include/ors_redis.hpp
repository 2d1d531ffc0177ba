/*
 * ors_redis.hpp - a header-only C++11 wrapper over the C API of ors-redis
 * (ors_redis.h), for code bases that build without exceptions.
 *
 *   ors_redis::library lib("redis-nodes=10.0.0.1:7000 cluster-name=ORS_EU");
 *   if (!lib) log("ors-redis: %s: %s", ors_redis::status_name(lib.status()), ors_redis::last_error());
 *
 *   ors_redis::put(id, bytes);                  // std::vector<uint8_t>, default-ttl
 *   ors_redis::buffer value;
 *   if (ors_redis::get(id, value) == ORS_OK) restore(value.data(), value.size());
 *   ors_redis::del(id);
 *
 * Nothing here throws (scan() and restore() only pass on what their own callback threw)
 * and nothing hides an error: every call returns the C status code (ORS_OK,
 * ORS_NOT_FOUND, or a negative ORS_ERR_*), and ors_redis::last_error() says
 * what failed. The wrapper itself allocates only where it fills a
 * std::vector or std::string (with -fno-exceptions a failed allocation ends
 * the process, as anywhere else in such a program). The rules of the C API
 * hold unchanged: any function may be called from any thread, init is once
 * per process.
 *
 * Session ids are std::string; an id that holds a NUL byte cannot be passed to
 * C and is refused with ORS_ERR_INVALID_ARGUMENT without calling the library
 * (ors_last_error() is then not updated).
 */
#ifndef ORS_REDIS_HPP
#define ORS_REDIS_HPP

#include "ors_redis.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
#include <exception>
#define ORS_REDIS_HPP_EXCEPTIONS 1
#endif

namespace ors_redis {

/** ORS_OK, ORS_NOT_FOUND, or a negative ORS_ERR_* code. */
typedef int32_t status;

/** The constant's name, e.g. "ORS_NOT_FOUND" (static storage). */
inline const char *status_name(status st) { return ors_status_name(st); }

/** What the last failed call on this thread did wrong (never NULL). Valid
 *  until this thread's next call of the library: copy it to keep it. */
inline const char *last_error() { return ors_last_error(); }

/** The library's version at run time, e.g. "0.1.0". Compare with
 *  ORS_REDIS_VERSION_MAJOR/_MINOR/_PATCH, the version compiled against. */
inline const char *version() { return ors_redis_version(); }

/**
 * A value read by get(): owns the library's buffer and releases it with
 * ors_free(). Move-only; a moved-from or default buffer is empty and data()
 * returns NULL.
 */
class buffer {
public:
    buffer() : data_(nullptr), size_(0) {}
    ~buffer() { ors_free(data_); }

    buffer(buffer &&other) noexcept : data_(other.data_), size_(other.size_)
    {
        other.data_ = nullptr;
        other.size_ = 0;
    }
    buffer &operator=(buffer &&other) noexcept
    {
        if (this != &other) {
            ors_free(data_);
            data_ = other.data_;
            size_ = other.size_;
            other.data_ = nullptr;
            other.size_ = 0;
        }
        return *this;
    }

    const uint8_t *data() const { return data_; }
    std::size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    const uint8_t *begin() const { return data_; }
    const uint8_t *end() const { return data_ + size_; }

    /** A copy of the bytes. */
    std::vector<uint8_t> to_vector() const { return std::vector<uint8_t>(begin(), end()); }
    /** A copy of the bytes as a string (binary-safe: NUL bytes are kept). */
    std::string to_string() const { return std::string(reinterpret_cast<const char *>(data_), size_); }

    /** Gives up ownership: the caller releases the pointer with ors_free(). */
    uint8_t *release()
    {
        uint8_t *p = data_;
        data_ = nullptr;
        size_ = 0;
        return p;
    }
    /** Frees the bytes now. */
    void reset()
    {
        ors_free(data_);
        data_ = nullptr;
        size_ = 0;
    }

    /** Takes ownership of a buffer that ors_session_get returned. */
    static buffer adopt(uint8_t *data, std::size_t len) { return buffer(data, len); }

    buffer(const buffer &) = delete;
    buffer &operator=(const buffer &) = delete;

private:
    buffer(uint8_t *data, std::size_t len) : data_(data), size_(len) {}
    uint8_t *data_;
    std::size_t size_;
};

namespace detail {
inline bool valid_id(const std::string &id) { return id.find('\0') == std::string::npos; }
} // namespace detail

/** ors_session_put: stores value under session_id for ttl_seconds (0: the
 *  configured default-ttl). */
inline status put(const std::string &session_id, const uint8_t *data, std::size_t len, uint32_t ttl_seconds = 0)
{
    if (!detail::valid_id(session_id)) return ORS_ERR_INVALID_ARGUMENT;
    return ors_session_put(session_id.c_str(), data, len, ttl_seconds);
}

inline status put(const std::string &session_id, const std::vector<uint8_t> &value, uint32_t ttl_seconds = 0)
{
    // data() of an empty vector may be NULL; the C API takes NULL with len 0.
    return put(session_id, value.empty() ? nullptr : &value[0], value.size(), ttl_seconds);
}

/** ors_session_get into a buffer: on ORS_OK out holds the value (possibly
 *  empty); otherwise out is empty. Whatever out held before is released. */
inline status get(const std::string &session_id, buffer &out)
{
    out.reset();
    if (!detail::valid_id(session_id)) return ORS_ERR_INVALID_ARGUMENT;
    uint8_t *data = nullptr;
    std::size_t len = 0;
    const status st = ors_session_get(session_id.c_str(), &data, &len);
    if (st == ORS_OK) out = buffer::adopt(data, len);
    return st;
}

/** ors_session_get into a vector: on ORS_OK out holds a copy of the value;
 *  otherwise out is cleared. */
inline status get(const std::string &session_id, std::vector<uint8_t> &out)
{
    buffer b;
    const status st = get(session_id, b);
    out.assign(b.begin(), b.end());
    return st;
}

/** ors_session_del: ORS_OK when a session was removed, ORS_NOT_FOUND when
 *  there was none. */
inline status del(const std::string &session_id)
{
    if (!detail::valid_id(session_id)) return ORS_ERR_INVALID_ARGUMENT;
    return ors_session_del(session_id.c_str());
}

namespace detail {
template <class F> struct scan_context {
    F *fn;
#ifdef ORS_REDIS_HPP_EXCEPTIONS
    std::exception_ptr error;
#endif
};

// The C callback: never lets an exception into the library (it would
// unwind through Rust frames); scan() rethrows it once the library returned.
template <class F> int32_t scan_trampoline(const char *session_id, void *user_data)
{
    scan_context<F> *ctx = static_cast<scan_context<F> *>(user_data);
#ifdef ORS_REDIS_HPP_EXCEPTIONS
    try {
        return (*ctx->fn)(std::string(session_id)) ? 0 : 1;
    } catch (...) {
        ctx->error = std::current_exception();
        return 1;
    }
#else
    return (*ctx->fn)(std::string(session_id)) ? 0 : 1;
#endif
}

// The restore's C callback, as scan_trampoline.
template <class F>
int32_t restore_trampoline(const char *session_id, const uint8_t *data, size_t len, void *user_data)
{
    scan_context<F> *ctx = static_cast<scan_context<F> *>(user_data);
#ifdef ORS_REDIS_HPP_EXCEPTIONS
    try {
        return (*ctx->fn)(std::string(session_id), data, len) ? 0 : 1;
    } catch (...) {
        ctx->error = std::current_exception();
        return 1;
    }
#else
    return (*ctx->fn)(std::string(session_id), data, len) ? 0 : 1;
#endif
}
} // namespace detail

/**
 * ors_session_restore, what a backup ORS calls at takeover: calls
 * fn(const std::string &session_id, const uint8_t *data, size_t len) once for
 * each live session whose id starts with prefix ("" for all), with its value
 * (valid during the call only: copy what you keep), on the calling thread;
 * fn returns true to go on, false to stop (restore then returns ORS_OK).
 * Exceptions thrown by fn are rethrown after the library returned, as scan's.
 */
template <class F> status restore(const std::string &prefix, F fn)
{
    if (!detail::valid_id(prefix)) return ORS_ERR_INVALID_ARGUMENT;
    detail::scan_context<F> ctx;
    ctx.fn = &fn;
    const status st = ors_session_restore(prefix.c_str(), &detail::restore_trampoline<F>, &ctx);
#ifdef ORS_REDIS_HPP_EXCEPTIONS
    if (ctx.error) std::rethrow_exception(ctx.error);
#endif
    return st;
}

/**
 * ors_session_scan: calls fn(const std::string &session_id) once for each
 * live session of this cluster name whose id starts with prefix ("" for all),
 * on the calling thread; fn returns true to go on, false to stop (scan then
 * returns ORS_OK). fn may call get() to load each session. Where exceptions
 * are enabled, one thrown by fn stops the scan and is rethrown from scan()
 * after the library has returned: it never passes through the C library.
 */
template <class F> status scan(const std::string &prefix, F fn)
{
    if (!detail::valid_id(prefix)) return ORS_ERR_INVALID_ARGUMENT;
    detail::scan_context<F> ctx;
    ctx.fn = &fn;
    const status st = ors_session_scan(prefix.c_str(), &detail::scan_trampoline<F>, &ctx);
#ifdef ORS_REDIS_HPP_EXCEPTIONS
    if (ctx.error) std::rethrow_exception(ctx.error);
#endif
    return st;
}

/** ors_redis_get_stats. */
inline status get_stats(ors_redis_stats &out) { return ors_redis_get_stats(&out); }

/** ors_redis_get_node_stats into `out`, resized to the nodes there are (a
 *  node met between the two calls is asked for again). On an error `out` is
 *  empty. */
inline status get_node_stats(std::vector<ors_node_stats> &out)
{
    std::size_t count = 0;
    for (int tries = 0; tries < 8; ++tries) {
        const status st = ors_redis_get_node_stats(out.empty() ? nullptr : out.data(), out.size(), &count);
        if (st != ORS_OK) {
            out.clear();
            return st;
        }
        const bool fits = count <= out.size();
        out.resize(count);
        if (fits) return ORS_OK;
    }
    return ORS_OK;
}

/** ors_redis_reconfigure: applies a changed config (a rotated password, new
 *  timeouts, log-level, seeds, TLS files) to the running library; all or
 *  nothing. A config that holds a NUL byte is ORS_ERR_CONFIG without
 *  calling the library. */
inline status reconfigure(const char *config) { return ors_redis_reconfigure(config); }
inline status reconfigure(const std::string &config)
{
    return config.find('\0') == std::string::npos ? ors_redis_reconfigure(config.c_str()) : ORS_ERR_CONFIG;
}

/**
 * Owns the library's initialisation: the constructor calls ors_redis_init,
 * the destructor ors_redis_shutdown, but only when this object's init
 * succeeded (a second object while one is alive gets
 * ORS_ERR_ALREADY_INITIALIZED and shuts nothing down). Move-only.
 *
 *   ors_redis::library lib(config);
 *   if (lib.status() != ORS_OK) { ... ors_redis::last_error() ... }
 */
class library {
public:
    explicit library(const char *config) : status_(ors_redis_init(config)) {}
    explicit library(const std::string &config)
        : status_(config.find('\0') == std::string::npos ? ors_redis_init(config.c_str()) : ORS_ERR_CONFIG)
    {
    }
    ~library() { shutdown(); }

    library(library &&other) noexcept : status_(other.status_) { other.status_ = ORS_ERR_NOT_INITIALIZED; }
    library &operator=(library &&other) noexcept
    {
        if (this != &other) {
            shutdown();
            status_ = other.status_;
            other.status_ = ORS_ERR_NOT_INITIALIZED;
        }
        return *this;
    }

    /** The status of ors_redis_init (ORS_ERR_NOT_INITIALIZED once shut down or moved from). */
    ors_redis::status status() const { return status_; }
    /** True while this object holds an initialised library. */
    bool ok() const { return status_ == ORS_OK; }
    explicit operator bool() const { return ok(); }

    /** Shuts down now (waits for calls in flight); the destructor then does
     *  nothing. Returns ORS_ERR_NOT_INITIALIZED if this object did not init. */
    ors_redis::status shutdown()
    {
        if (status_ != ORS_OK) return ORS_ERR_NOT_INITIALIZED;
        status_ = ORS_ERR_NOT_INITIALIZED;
        return ors_redis_shutdown();
    }

    library(const library &) = delete;
    library &operator=(const library &) = delete;

private:
    ors_redis::status status_;
};

} // namespace ors_redis

#endif /* ORS_REDIS_HPP */
