// RunControl: the exit request, the run state and the run-control queue.
#include "run_control.hpp"

#include <boost/asio/post.hpp>
#include <fmt/format.h>

namespace vmm {

RunControl::RunControl(boost::asio::io_context& io, Hooks hooks)
    : m_io(io)
    , m_hooks(std::move(hooks))
{
}

void RunControl::request_exit(ExitRequest request)
{
    {
        std::lock_guard lock(m_mutex);
        if (m_exit)
            return;
        m_exit = request;
        m_cv.notify_all();
    }
    m_hooks.exiting(request);
}

bool RunControl::exit_requested() const
{
    std::lock_guard lock(m_mutex);
    return m_exit.has_value();
}

void RunControl::client_connected()
{
    std::lock_guard lock(m_mutex);
    m_client_seen = true;
    m_cv.notify_all();
}

bool RunControl::wait_for_client()
{
    std::unique_lock lock(m_mutex);
    m_cv.wait(lock, [this] { return m_client_seen || m_exit.has_value(); });
    return !m_exit.has_value();
}

ExitRequest RunControl::wait_for_exit()
{
    std::unique_lock lock(m_mutex);
    m_cv.wait(lock, [this] { return m_exit.has_value(); });
    return *m_exit;
}

void RunControl::guest_started()
{
    m_state = qmp::RunState::Running;
    next();
}

void RunControl::queue(std::function<void(Done)> operation)
{
    m_queue.push_back(std::move(operation));
    if (!m_busy)
        next();
}

void RunControl::next()
{
    if (m_queue.empty()) {
        m_busy = false;
        return;
    }
    m_busy = true;
    auto operation = std::move(m_queue.front());
    m_queue.pop_front();
    // Posted, so a chain of synchronous operations unwinds instead of nesting.
    operation([this] { boost::asio::post(m_io, [this] { next(); }); });
}

void RunControl::stop(qmp::Reply reply)
{
    queue([this, reply = std::move(reply)](Done done) {
        if (m_state != qmp::RunState::Running) {
            reply(qmp::Json::object()); // already stopped: QEMU answers {} and sends no event
            done();
            return;
        }
        m_hooks.pause([this, reply, done](std::optional<std::string> error) {
            if (error) {
                reply(cpuplug::unexpected(qmp::generic_error(*error)));
            } else {
                m_state = qmp::RunState::Paused;
                m_hooks.emit("STOP", std::nullopt);
                reply(qmp::Json::object());
            }
            done();
        });
    });
}

void RunControl::cont(qmp::Reply reply)
{
    queue([this, reply = std::move(reply)](Done done) {
        if (m_state != qmp::RunState::Running) {
            m_hooks.resume();
            m_state = qmp::RunState::Running;
            m_hooks.emit("RESUME", std::nullopt);
        }
        reply(qmp::Json::object());
        done();
    });
}

void RunControl::system_reset(qmp::Reply reply) { reset(false, std::move(reply)); }

void RunControl::guest_reset()
{
    {
        std::lock_guard lock(m_mutex);
        if (m_guest_reset_pending || m_exit)
            return;
        m_guest_reset_pending = true;
    }
    boost::asio::post(m_io, [this] { reset(true, nullptr); });
}

void RunControl::reset(bool guest, qmp::Reply reply)
{
    auto answer = [reply](qmp::Outcome result) {
        if (reply)
            reply(std::move(result));
    };
    queue([this, guest, answer](Done done) {
        bool was_running = m_state == qmp::RunState::Running;
        auto finish = [this, guest, answer, done, was_running] {
            if (guest) {
                // From here on the vCPUs are paused: a new request from the guest is for the next boot.
                std::lock_guard lock(m_mutex);
                m_guest_reset_pending = false;
            }
            if (auto reset = m_hooks.reset(); !reset.has_value()) {
                // Half-reset vCPUs cannot run on: end the VM and say why.
                answer(cpuplug::unexpected(qmp::generic_error(reset.error())));
                request_exit({ EXIT_VMM_ERROR, fmt::format("system_reset failed: {}", reset.error()) });
                done();
                return;
            }
            m_hooks.emit("RESET", qmp::Json { { "guest", guest }, { "reason", guest ? "guest-reset" : "host-qmp-system-reset" } });
            if (was_running)
                m_hooks.resume();
            else
                m_state = qmp::RunState::Prelaunch; // as QEMU: reset while stopped waits for `cont`
            answer(qmp::Json::object());
            done();
        };
        if (!was_running) {
            finish();
            return;
        }
        m_hooks.pause([this, guest, answer, done, finish](std::optional<std::string> error) {
            if (error) {
                if (guest) {
                    std::lock_guard lock(m_mutex);
                    m_guest_reset_pending = false; // the guest may ask again
                }
                answer(cpuplug::unexpected(qmp::generic_error(*error)));
                done();
                return;
            }
            finish();
        });
    });
}

void RunControl::system_powerdown(qmp::Reply reply)
{
    // The button is pressed even while paused; the guest sees it when it runs again.
    m_hooks.emit("POWERDOWN", std::nullopt);
    m_hooks.power_button();
    reply(qmp::Json::object());
}

void RunControl::quit(qmp::Reply reply)
{
    // SHUTDOWN goes out before the reply, as in QEMU; the process then ends.
    request_exit({ EXIT_OK, "quit requested over QMP", false, "host-qmp-quit" });
    reply(qmp::Json::object());
    // Commands still waiting for the guest are answered now, while their clients can still read it.
    m_hooks.quit_answered();
}

} // namespace vmm
