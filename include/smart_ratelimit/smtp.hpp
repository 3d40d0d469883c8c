// smart_ratelimit/smtp.hpp
// The SMTP adapter (target smart_ratelimit::smtp, needs libcurl): curl_mailer, a
// mail_sender for send_offender_alerts, and the RFC 5322 message builder.
#pragma once

#include <smart_ratelimit/smtp/curl_mailer.hpp>
#include <smart_ratelimit/smtp/message.hpp>
