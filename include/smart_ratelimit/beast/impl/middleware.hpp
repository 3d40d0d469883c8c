// smart_ratelimit/beast/impl/middleware.hpp
// Out-of-line bodies of beast::middleware (declared in beast/middleware.hpp): the
// route table, the one-route and several-route decisions, the degraded answers,
// the events, and the synchronous and asynchronous entry points.
#pragma once

#include <boost/asio/async_result.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>

#include <exception>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>

namespace smart_ratelimit::beast {

template <class Limiter, class Identify>
middleware<Limiter, Identify>::middleware(middleware_options options, Identify identify)
    : options_(std::move(options)), identify_(std::move(identify)) {
    options_.fallback_grouping.validate();
}

template <class Limiter, class Identify>
middleware<Limiter, Identify>& middleware<Limiter, Identify>::add(Limiter& lim, route r) {
    if (r.path_prefix.empty() || r.path_prefix.front() != '/')
        throw config_error("route path prefix must start with '/': \"" + r.path_prefix + "\"");
    if (const std::string canonical = canonical_path(r.path_prefix); canonical != r.path_prefix)
        throw config_error("route path prefix \"" + r.path_prefix +
                           "\" is not canonical (requests are matched as \"" + canonical + "\")");
    if (r.cost == 0)
        throw config_error("route cost must be at least 1 (\"" + r.path_prefix + "\")");
    for (const auto& rule : lim.rules())
        if (r.cost > rule.algorithm.limit())
            throw config_error("route \"" + r.path_prefix + "\": cost " + std::to_string(r.cost) +
                               " exceeds the limit of rule \"" + rule.name + "\"");
    // A request that matches this route alone reports these rules' fixed policy.
    std::vector<rule_status> rules;
    for (const auto& rule : lim.rules())
        rules.push_back(rule_status{
            std::string_view(rule.name), rule.algorithm.limit(), 0, rule.algorithm.period(), {}});
    std::string policy = format_ratelimit_policy(rules, options_.headers.default_policy_name);
    routes_.push_back(bound_route{std::move(r), &lim, std::move(policy)});
    return *this;
}

template <class Limiter, class Identify>
middleware_stats middleware<Limiter, Identify>::stats() const noexcept {
    middleware_stats s;
    s.checked = checked_.load(std::memory_order_relaxed);
    s.allowed = allowed_.load(std::memory_order_relaxed);
    s.blocked = blocked_.load(std::memory_order_relaxed);
    s.degraded_open = degraded_open_.load(std::memory_order_relaxed);
    s.degraded_closed = degraded_closed_.load(std::memory_order_relaxed);
    s.sink_failures = sink_failures_.load(std::memory_order_relaxed);
    s.identify_failures = identify_failures_.load(std::memory_order_relaxed);
    return s;
}

template <class Limiter, class Identify>
limit_result middleware<Limiter, Identify>::check(const http::request_header<>& req,
                                                  const ip_address& peer) {
    if (!any_route_matches(req)) {
        // Not limited: skip identify and the X-Forwarded-For walk.
        limit_result out;
        out.headers_ = &options_.headers;
        return out;
    }
    std::optional<std::string> user;
    try {
        user = identify_(req);
    } catch (...) {
        // An identify policy that throws makes the request anonymous (keyed by IP).
        identify_failures_.fetch_add(1, std::memory_order_relaxed);
    }
    request_view view(req, peer, options_.trusted_proxies);
    if (user) view.set_user_id(std::string_view(*user));
    return check(view);
}

template <class Limiter, class Identify>
limit_result middleware<Limiter, Identify>::check(const request_view& view) {
    limit_result out;
    out.headers_ = &options_.headers;
    out.problem_json_ = options_.problem_json;
    const auto verb = view.request().method();
    std::string buffer;
    const std::string_view path = canonical_path(view.path(), buffer);
    std::size_t first = routes_.size(), matched = 0;
    for (std::size_t i = 0; i < routes_.size(); ++i)
        if (routes_[i].r.matches_canonical(path, verb)) {
            if (matched++ == 0) first = i;
        }
    if (matched == 0) return out;
    checked_.fetch_add(1, std::memory_order_relaxed);
    try {
        if (matched == 1)
            check_one(view, routes_[first], out);
        else
            check_many(view, path, verb, out);
    } catch (...) {
        // Not a store failure (the limiter turns those into degraded decisions): an
        // allocation failure, or a key extractor that threw. Degraded all the same.
        fail(out, routes_[first].limiter);
    }
    count(out);
    return out;
}

template <class Limiter, class Identify>
template <class Body, handles<Body> Handler>
http::message_generator middleware<Limiter, Identify>::handle(http::request<Body>& req,
                                                              const ip_address& peer,
                                                              Handler&& handler) {
    const limit_result r = check(req, peer);
    if (!r.allowed()) return http::message_generator(r.make_response(req));
    return detail::answer<Body>(handler, req, r);
}

template <class Limiter, class Identify>
template <class CompletionToken>
auto middleware<Limiter, Identify>::async_check(const http::request_header<>& req,
                                                const ip_address& peer, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken,
                                       void(boost::system::error_code, limit_result)>(
        [this, &req, peer](auto handler) {
            // The completion: a check that threw or was refused is an error, and
            // degraded_closed so that answering it is safe.
            auto complete = [this](auto handler, detail::blocking_status status, limit_result r) {
                boost::system::error_code ec;
                if (status.exception) {
                    ec = status.rejected ? error::work_rejected : error::check_failed;
                    fail(r, nullptr);  // check() catches the rest: only bad_alloc gets here
                }
                std::move(handler)(ec, std::move(r));
            };
            auto fn = [this, &req, peer] { return check(req, peer); };
            if (work_ && any_route_matches(req))
                detail::start_blocking(std::move(handler), std::move(fn), *work_,
                                       std::move(complete));
            else
                run_inline(std::move(handler), std::move(fn), std::move(complete));
        },
        token);
}

template <class Limiter, class Identify>
template <class Body, handles<Body> Handler, class CompletionToken>
auto middleware<Limiter, Identify>::async_handle(http::request<Body>& req, const ip_address& peer,
                                                 Handler handler, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken,
                                       void(boost::system::error_code, http::message_generator)>(
        [this, &req, peer](auto completion, Handler handler) {
            auto ex = boost::asio::get_associated_executor(completion);
            this->async_check(
                req, peer,
                boost::asio::bind_executor(
                    ex, [&req, handler = std::move(handler), completion = std::move(completion)](
                            boost::system::error_code ec, limit_result r) mutable {
                        if (!r.allowed()) {
                            std::move(completion)(ec,
                                                  http::message_generator(r.make_response(req)));
                            return;
                        }
                        std::optional<http::message_generator> msg;
                        try {
                            msg.emplace(detail::answer<Body>(handler, req, r));
                        } catch (...) {
                            ec = error::handler_failed;
                            http::response<http::string_body> res{
                                http::status::internal_server_error, req.version()};
                            res.keep_alive(false);
                            res.prepare_payload();
                            msg.emplace(std::move(res));
                        }
                        std::move(completion)(ec, std::move(*msg));
                    }));
        },
        token, std::move(handler));
}

// A request whose check failed outside the store: degraded, with the failure policy
// of `lim` (the first matched route's limiter; closed when unknown).
template <class Limiter, class Identify>
void middleware<Limiter, Identify>::fail(limit_result& out, const Limiter* lim) noexcept {
    out.rules_.clear();
    out.retry_after_ = std::chrono::seconds(1);
    out.headers_ = &options_.headers;
    const bool open =
        lim != nullptr && lim->options().on_store_failure == failure_policy::fail_open;
    out.status_ = open ? limit_status::degraded_open : limit_status::degraded_closed;
}

template <class Limiter, class Identify>
void middleware<Limiter, Identify>::count(const limit_result& out) noexcept {
    std::atomic<std::uint64_t>* c = &allowed_;
    switch (out.status_) {
        case limit_status::blocked:
            c = &blocked_;
            break;
        case limit_status::degraded_open:
            c = &degraded_open_;
            break;
        case limit_status::degraded_closed:
            c = &degraded_closed_;
            break;
        case limit_status::unlimited:
        case limit_status::allowed:
            break;
    }
    c->fetch_add(1, std::memory_order_relaxed);
}

template <class Limiter, class Identify>
bool middleware<Limiter, Identify>::any_route_matches(
    const http::request_header<>& req) const noexcept {
    try {
        const auto t = req.target();
        std::string buffer;
        const std::string_view path =
            canonical_path(path_of(std::string_view(t.data(), t.size())), buffer);
        const auto verb = req.method();
        for (const auto& br : routes_)
            if (br.r.matches_canonical(path, verb)) return true;
        return false;
    } catch (...) {  // no memory for the canonical path: let check() decide
        return true;
    }
}

// No work executor: check now, complete through the handler's executor (never from
// inside the initiating function).
template <class Limiter, class Identify>
template <class Handler, class Fn, class Complete>
void middleware<Limiter, Identify>::run_inline(Handler handler, Fn fn, Complete complete) {
    detail::blocking_status status;
    limit_result r;
    try {
        r = fn();
    } catch (...) {
        status.exception = std::current_exception();
    }
    auto ex = boost::asio::get_associated_executor(handler);
    boost::asio::post(ex, [handler = std::move(handler), complete = std::move(complete),
                           status = std::move(status), r = std::move(r)]() mutable {
        std::move(complete)(std::move(handler), std::move(status), std::move(r));
    });
}

template <class Limiter, class Identify>
void middleware<Limiter, Identify>::push_status(limit_result& out, const Limiter& lim,
                                                std::size_t rule_index, const decision& d) const {
    const auto& rule = lim.rules()[rule_index];
    out.rules_.push_back(rule_status{std::string_view(rule.name), d.limit, d.remaining,
                                     rule.algorithm.period(), d.reset_after});
}

// The status of a request from its decisions: 429 when a rule finds the client over
// its limit; else 503 when a degraded rule refuses (fail_closed); else a pass,
// degraded_open when a rule could not decide. Picks the binding rule and the wait.
// A degraded request reports no rule states, so no quota fields are sent.
template <class Limiter, class Identify>
void middleware<Limiter, Identify>::conclude(limit_result& out,
                                             std::span<const decision* const> ds) {
    bool blocked = false, refused = false, degraded = false;
    std::chrono::nanoseconds degraded_wait{0};
    for (const decision* d : ds) {
        blocked = blocked || d->blocked();
        degraded = degraded || d->degraded;
        if (d->degraded && d->rejects()) {
            refused = true;
            degraded_wait = std::max(degraded_wait, d->retry_after);
        }
    }
    if (!blocked && degraded) {
        out.rules_.clear();
        out.retry_after_ = refused ? degraded_wait : std::chrono::nanoseconds{0};
        out.status_ = refused ? limit_status::degraded_closed : limit_status::degraded_open;
        return;
    }
    std::size_t best = 0;
    for (std::size_t i = 0; i < ds.size(); ++i) {
        if (ds[i]->blocked()) {
            if (!ds[best]->blocked() || ds[i]->retry_after > out.retry_after_) {
                best = i;
                out.retry_after_ = ds[i]->retry_after;
            }
        } else if (!ds[best]->blocked() && out.rules_[i].remaining < out.rules_[best].remaining) {
            best = i;
        }
    }
    if (blocked && out.retry_after_ == never) {
        // Cannot pass at all (cost above capacity): report the window.
        out.retry_after_ = out.rules_[best].window;
    }
    out.binding_ = best;
    out.status_ = blocked ? limit_status::blocked : limit_status::allowed;
}

template <class Limiter, class Identify>
std::string middleware<Limiter, Identify>::fallback_key(const request_view& view) const {
    return smart_ratelimit::ip_key(view.client(), options_.fallback_grouping);
}

template <class Limiter, class Identify>
request_info middleware<Limiter, Identify>::info_of(const request_view& view,
                                                    std::string_view peer_text,
                                                    std::string_view fallback) const {
    request_info info;
    info.path = view.path();
    info.method = view.method();
    info.ip_address = peer_text;
    info.user_id = view.user_id();
    info.fallback_key = fallback;
    return info;
}

// One matched route: the limiter's own multi-rule decision.
template <class Limiter, class Identify>
void middleware<Limiter, Identify>::check_one(const request_view& view, bound_route& br,
                                              limit_result& out) {
    Limiter& lim = *br.limiter;
    auto&& key = lim.key_extractor()(view);
    std::string_view k(key);
    std::string fallback;  // the client's IP key, built only when the extractor yields ""
    if (k.empty()) {
        fallback = fallback_key(view);
        k = fallback;
    }
    verdict v;
    if (options_.log_events) {
        char peer_text[ip_address::max_text_size];
        const std::string_view peer(peer_text, view.peer().write(peer_text));
        v = lim.check_key_and_record(k, info_of(view, peer, {}), br.r.cost);
    } else {
        v = lim.check_key(k, br.r.cost);
    }
    out.wall_now_ = wall_now_coarse(lim.clock());
    out.policy_ = br.policy;
    const auto ds = v.decisions();
    const decision* ptrs[verdict::max_rules];
    for (std::size_t i = 0; i < ds.size(); ++i) {
        push_status(out, lim, i, ds[i]);
        ptrs[i] = &ds[i];
    }
    conclude(out, std::span<const decision* const>(ptrs, ds.size()));
}

// Several matched routes: peek every rule of every matched limiter; if none refuses,
// acquire them all, refunding on a lost race or a store that fails closed (the
// limiter's own protocol across limiters), so no rule spends budget for a request
// another rejects. A storage call that throws is a degraded decision.
template <class Limiter, class Identify>
void middleware<Limiter, Identify>::check_many(const request_view& view, std::string_view path,
                                               http::verb verb, limit_result& out) {
    auto guarded = [](auto&& call) noexcept -> outcome {
        try {
            return call();
        } catch (...) {
            return degraded_outcome();
        }
    };
    std::vector<pending> ps;
    std::string fallback;
    for (auto& br : routes_) {
        if (!br.r.matches_canonical(path, verb)) continue;
        Limiter& lim = *br.limiter;
        auto&& key = lim.key_extractor()(view);
        std::string_view inner(key);
        if (inner.empty()) {
            if (fallback.empty()) fallback = fallback_key(view);
            inner = fallback;
        }
        const auto now = lim.clock().now();
        for (std::size_t i = 0; i < lim.rules().size(); ++i) {
            pending& p = ps.emplace_back(pending{&lim, i, now, br.r.cost, decision{}, false});
            const auto& rule = lim.rules()[i];
            format_key(p.d.key, rule.name, inner);
            lim.make_decision(p.d, i, guarded([&] {
                                  return lim.storage().peek(p.d.key.view(), rule.algorithm, now,
                                                            br.r.cost);
                              }));
        }
    }
    bool refused = false;
    for (const auto& p : ps) refused = refused || p.d.rejects();
    if (!refused) {
        for (std::size_t i = 0; i < ps.size(); ++i) {
            pending& p = ps[i];
            // A denying shadow rule and a degraded rule failing open consume nothing.
            if (!p.d.allowed || p.d.degraded) continue;
            const auto& rule = p.limiter->rules()[p.rule];
            p.limiter->make_decision(p.d, p.rule, guarded([&] {
                                         return p.limiter->storage().acquire(
                                             p.d.key.view(), rule.algorithm, p.now, p.cost);
                                     }));
            p.acquired = p.d.allowed && !p.d.degraded;
            if (p.d.rejects()) {
                refund(ps, i);
                break;
            }
        }
    }
    for (const auto& p : ps) p.limiter->observe(p.rule, p.d, not_timed);
    out.wall_now_ = ps.front().limiter->clock().wall_now();
    if (options_.log_events) record(view, ps, out.wall_now_);
    std::vector<const decision*> ptrs(ps.size());
    for (std::size_t i = 0; i < ps.size(); ++i) {
        push_status(out, *ps[i].limiter, ps[i].rule, ps[i].d);
        ptrs[i] = &ps[i].d;
    }
    conclude(out, ptrs);
}

template <class Limiter, class Identify>
void middleware<Limiter, Identify>::refund(std::vector<pending>& ps, std::size_t upto) noexcept {
    for (std::size_t j = 0; j < upto && j < ps.size(); ++j) {
        if (!ps[j].acquired) continue;
        try {
            const auto& rule = ps[j].limiter->rules()[ps[j].rule];
            ps[j].limiter->storage().release(ps[j].d.key.view(), rule.algorithm, ps[j].now,
                                             ps[j].cost);
        } catch (...) {}
        ps[j].acquired = false;
    }
}

template <class Limiter, class Identify>
void middleware<Limiter, Identify>::record(const request_view& view, const std::vector<pending>& ps,
                                           event_time ts) {
    if constexpr (requires { Limiter::sink_type::discards_events; }) {
        if constexpr (Limiter::sink_type::discards_events) return;
    }
    const std::string peer_text = view.peer().to_string();
    const auto user = view.user_id();
    for (const auto& p : ps) {
        try {
            p.limiter->sink().record(make_event(ts, p.d.key.view(), view.path(), view.method(),
                                                p.d.kind(), static_cast<std::int64_t>(p.d.count),
                                                static_cast<std::int64_t>(p.d.limit),
                                                std::string_view(peer_text), user));
        } catch (...) {
            sink_failures_.fetch_add(1, std::memory_order_relaxed);
        }
    }
}

}  // namespace smart_ratelimit::beast
