// smart_ratelimit/alerts.hpp
// Alerting umbrella (standard headers only): the alert texts, the channel and
// alert-log policies, and send_offender_alerts. The libcurl e-mail sender
// is smtp.hpp, the Beast webhook client beast/webhook_client.hpp, and the SQL
// cool-down memory soci/alert_log.hpp; each is its own opt-in target.
#pragma once

#include <smart_ratelimit/alerts/alert_log.hpp>
#include <smart_ratelimit/alerts/channels.hpp>
#include <smart_ratelimit/alerts/message.hpp>
#include <smart_ratelimit/alerts/send.hpp>
