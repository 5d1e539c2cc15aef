#ifndef FLEET_CRABBITMQ_SHIM_H
#define FLEET_CRABBITMQ_SHIM_H

// rabbitmq-c 0.11 (Debian 12's librabbitmq-dev) keeps its headers at the top of the include path;
// 0.12 and later moved them under <rabbitmq-c/...>. Take whichever this machine has.
#if __has_include(<rabbitmq-c/amqp.h>)
#include <rabbitmq-c/amqp.h>
#include <rabbitmq-c/framing.h>
#include <rabbitmq-c/tcp_socket.h>
#include <rabbitmq-c/ssl_socket.h>
#else
#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <amqp_ssl_socket.h>
#endif
#include <string.h>
#include <sys/eventfd.h>
#include <poll.h>
#include <sys/prctl.h>

/// Names the calling thread for `top -H` and profilers (15 bytes at most are kept).
static inline void fleet_set_thread_name(const char *name) {
    prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0);
}

// amqp_login_with_properties is variadic, which Swift cannot call. This wrapper logs in with
// SASL PLAIN and announces the capabilities the fleet relies on (connection.blocked, consumer
// cancel notifications, publisher confirms), plus a connection name shown in the management UI.
static inline amqp_rpc_reply_t fleet_amqp_login(amqp_connection_state_t state, const char *vhost,
                                                int channel_max, int frame_max, int heartbeat,
                                                const char *connection_name, const char *user,
                                                const char *password) {
    amqp_table_entry_t caps[4];
    caps[0].key = amqp_cstring_bytes("connection.blocked");
    caps[0].value.kind = AMQP_FIELD_KIND_BOOLEAN;
    caps[0].value.value.boolean = 1;
    caps[1].key = amqp_cstring_bytes("consumer_cancel_notify");
    caps[1].value.kind = AMQP_FIELD_KIND_BOOLEAN;
    caps[1].value.value.boolean = 1;
    caps[2].key = amqp_cstring_bytes("publisher_confirms");
    caps[2].value.kind = AMQP_FIELD_KIND_BOOLEAN;
    caps[2].value.value.boolean = 1;
    caps[3].key = amqp_cstring_bytes("basic.nack");
    caps[3].value.kind = AMQP_FIELD_KIND_BOOLEAN;
    caps[3].value.value.boolean = 1;

    amqp_table_entry_t props[3];
    props[0].key = amqp_cstring_bytes("capabilities");
    props[0].value.kind = AMQP_FIELD_KIND_TABLE;
    props[0].value.value.table.num_entries = 4;
    props[0].value.value.table.entries = caps;
    props[1].key = amqp_cstring_bytes("connection_name");
    props[1].value.kind = AMQP_FIELD_KIND_UTF8;
    props[1].value.value.bytes = amqp_cstring_bytes(connection_name);
    props[2].key = amqp_cstring_bytes("product");
    props[2].value.kind = AMQP_FIELD_KIND_UTF8;
    props[2].value.value.bytes = amqp_cstring_bytes("fleet (rabbitmq-c)");

    amqp_table_t table;
    table.num_entries = 3;
    table.entries = props;
    return amqp_login_with_properties(state, vhost, channel_max, frame_max, heartbeat, &table,
                                      AMQP_SASL_METHOD_PLAIN, user, password);
}

// Replies to a broker-initiated channel.close / connection.close.
static inline int fleet_amqp_send_channel_close_ok(amqp_connection_state_t state, amqp_channel_t channel) {
    amqp_channel_close_ok_t ok;
    memset(&ok, 0, sizeof ok);
    return amqp_send_method(state, channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
}

static inline int fleet_amqp_send_connection_close_ok(amqp_connection_state_t state) {
    amqp_connection_close_ok_t ok;
    memset(&ok, 0, sizeof ok);
    return amqp_send_method(state, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
}

// AMQP_EMPTY_TABLE / AMQP_EMPTY_BYTES are macros over compound literals.
static inline amqp_table_t fleet_amqp_empty_table(void) { return amqp_empty_table; }
static inline amqp_bytes_t fleet_amqp_empty_bytes(void) { return amqp_empty_bytes; }

// Method ids are macros with casts, which Swift does not import: re-export them as constants.
static const amqp_method_number_t fleet_basic_deliver_method = AMQP_BASIC_DELIVER_METHOD;
static const amqp_method_number_t fleet_basic_ack_method = AMQP_BASIC_ACK_METHOD;
static const amqp_method_number_t fleet_basic_nack_method = AMQP_BASIC_NACK_METHOD;
static const amqp_method_number_t fleet_basic_return_method = AMQP_BASIC_RETURN_METHOD;
static const amqp_method_number_t fleet_basic_cancel_method = AMQP_BASIC_CANCEL_METHOD;
static const amqp_method_number_t fleet_channel_close_method = AMQP_CHANNEL_CLOSE_METHOD;
static const amqp_method_number_t fleet_connection_close_method = AMQP_CONNECTION_CLOSE_METHOD;
static const amqp_method_number_t fleet_connection_blocked_method = AMQP_CONNECTION_BLOCKED_METHOD;
static const amqp_method_number_t fleet_connection_unblocked_method = AMQP_CONNECTION_UNBLOCKED_METHOD;

static const amqp_flags_t fleet_flag_content_type = AMQP_BASIC_CONTENT_TYPE_FLAG;
static const amqp_flags_t fleet_flag_content_encoding = AMQP_BASIC_CONTENT_ENCODING_FLAG;
static const amqp_flags_t fleet_flag_headers = AMQP_BASIC_HEADERS_FLAG;
static const amqp_flags_t fleet_flag_delivery_mode = AMQP_BASIC_DELIVERY_MODE_FLAG;
static const amqp_flags_t fleet_flag_priority = AMQP_BASIC_PRIORITY_FLAG;
static const amqp_flags_t fleet_flag_correlation_id = AMQP_BASIC_CORRELATION_ID_FLAG;
static const amqp_flags_t fleet_flag_reply_to = AMQP_BASIC_REPLY_TO_FLAG;
static const amqp_flags_t fleet_flag_expiration = AMQP_BASIC_EXPIRATION_FLAG;
static const amqp_flags_t fleet_flag_message_id = AMQP_BASIC_MESSAGE_ID_FLAG;
static const amqp_flags_t fleet_flag_timestamp = AMQP_BASIC_TIMESTAMP_FLAG;
static const amqp_flags_t fleet_flag_type = AMQP_BASIC_TYPE_FLAG;
static const amqp_flags_t fleet_flag_app_id = AMQP_BASIC_APP_ID_FLAG;

#endif
