// smart_ratelimit/alerts/soci_alert_log.hpp
// Former home of soci::sql_alert_log, kept so existing includes compile: the SQL
// alert cool-down is soci/alert_log.hpp, in the SOCI adapter's directory like its
// namespace. Include that header in new code.
#pragma once

#include <smart_ratelimit/soci/alert_log.hpp>
