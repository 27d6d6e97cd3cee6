#!/usr/bin/python3
"""Fault-test subscriber on Eclipse Paho (Python): a persistent session (CleanSession 0) that
subscribes once at QoS 2 and prints one line per message, "M <qos> <topic> <payload>", flushed at
once, and "C <rc> <session present>" on every CONNACK. Paho reconnects by itself (1-2 s) after a
lost connection, whatever the reason. Runs until killed.

Usage: paho_sub.py HOST PORT CLIENT_ID FILTER KEEPALIVE
Works with paho-mqtt 1.x (Debian 12) and 2.x.
"""
import sys

import paho.mqtt.client as mqtt


def main():
    host, port, client_id, topic_filter, keepalive = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
    kwargs = {"client_id": client_id, "clean_session": False, "protocol": mqtt.MQTTv311}
    if hasattr(mqtt, "CallbackAPIVersion"):  # paho-mqtt 2.x keeps the 1.x callback shapes with VERSION1
        kwargs["callback_api_version"] = mqtt.CallbackAPIVersion.VERSION1
    client = mqtt.Client(**kwargs)
    subscribed = {"done": False}

    def on_connect(c, _userdata, flags, rc):
        print(f"C {rc} {flags.get('session present', 0)}", flush=True)
        # Subscribed once: the session keeps the subscription (resubscribing would hide a lost one).
        if rc == 0 and not subscribed["done"]:
            subscribed["done"] = True
            c.subscribe(topic_filter, qos=2)

    def on_message(_c, _userdata, message):
        print(f"M {message.qos} {message.topic} {message.payload.decode()}", flush=True)

    client.on_connect = on_connect
    client.on_message = on_message
    client.reconnect_delay_set(min_delay=1, max_delay=2)
    client.connect_async(host, port, keepalive=keepalive)
    client.loop_forever(retry_first_connection=True)


if __name__ == "__main__":
    main()
