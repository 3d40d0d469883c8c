// Asks libcurl whether it speaks SMTP: compiles only with the include path the
// SMTP adapter target carries, links only with libcurl.
#include <curl/curl.h>

#include <cstring>

int smtp_round_trip() {
    const curl_version_info_data* info = curl_version_info(CURLVERSION_NOW);
    for (const char* const* p = info->protocols; p != nullptr && *p != nullptr; ++p)
        if (std::strcmp(*p, "smtp") == 0) return 42;
    return 0;
}
