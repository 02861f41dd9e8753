#!/usr/bin/env python3
"""Interop checks of the gateway's broker with Eclipse Paho (python3-paho-mqtt, MQTT 3.1.1, 5 and 3.1).

Usage: paho_suite.py HOST PORT  < credentials.json   ({"controller": [id, pw], "device": [id, pw], "other": [id, pw]})
Prints one JSON object: {"<check>": {"ok": bool, ...observations}}. The Node test asserts on it.
Every wait is bounded; the script never talks to anything but HOST:PORT.
"""
import json
import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

HOST, PORT = sys.argv[1], int(sys.argv[2])
CREDS = json.load(sys.stdin)
WAIT = 5.0


class Peer:
    """One paho client with its received messages, connack and disconnect code recorded."""

    def __init__(self, who, clean=True, will=None, client_id=None, protocol=mqtt.MQTTv311):
        cid, pw = CREDS[who]
        # MQTT 5 has no clean session flag on the client (clean start is per connect).
        self.c = mqtt.Client(client_id=client_id or cid, clean_session=None if protocol == mqtt.MQTTv5 else clean, protocol=protocol)
        # Every controller client id is its own account with the same test password.
        self.c.username_pw_set(client_id or cid, pw)
        if will:
            self.c.will_set(will[0], will[1], qos=1, retain=False)
        self.msgs = []
        self.connack = None
        self.session_present = None
        self.disconnect_rc = None
        self.granted = None
        self.cond = threading.Condition()
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.on_disconnect = self._on_disconnect
        self.c.on_subscribe = self._on_subscribe

    def _notify(self):
        with self.cond:
            self.cond.notify_all()

    def _on_connect(self, c, u, flags, rc):
        self.connack = rc
        self.session_present = bool(flags.get("session present"))
        self._notify()

    def _on_message(self, c, u, m):
        self.msgs.append({"topic": m.topic, "payload": m.payload.decode("utf-8", "replace"), "qos": m.qos, "retain": bool(m.retain), "dup": bool(m.dup)})
        self._notify()

    def _on_disconnect(self, c, u, rc):
        self.disconnect_rc = rc
        self._notify()

    def _on_subscribe(self, c, u, mid, granted):
        self.granted = list(granted)
        self._notify()

    def wait(self, pred, timeout=WAIT):
        end = time.time() + timeout
        with self.cond:
            while not pred():
                left = end - time.time()
                if left <= 0:
                    return False
                self.cond.wait(left)
        return True

    def connect(self):
        self.c.connect(HOST, PORT, keepalive=30)
        self.c.loop_start()
        self.wait(lambda: self.connack is not None)
        return self.connack

    def subscribe(self, topic, qos):
        self.granted = None
        self.c.subscribe(topic, qos)
        self.wait(lambda: self.granted is not None)
        return self.granted

    def publish(self, topic, payload, qos=0, retain=False):
        info = self.c.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(WAIT)
        return info.is_published()

    def stop(self):
        try:
            self.c.disconnect()
        finally:
            self.c.loop_stop()

    def kill(self):
        """Drops the TCP connection without DISCONNECT (a crash or a lost network)."""
        self.c.loop_stop()
        self.c.socket().close()


def check(name, fn, out):
    try:
        out[name] = fn()
    except Exception as e:  # a failed check is reported, not fatal for the rest
        out[name] = {"ok": False, "error": repr(e)}


def routing():
    dev_id = CREDS["device"][0]
    ha = Peer("controller", client_id="paho-ha-1")
    dev = Peer("device")
    ha.connect(), dev.connect()
    granted = ha.subscribe(f"tele/{dev_id}/SENSOR", 1)
    dev.publish(f"tele/{dev_id}/SENSOR", '{"power_w": 7}', qos=1)
    got = ha.wait(lambda: len(ha.msgs) >= 1)
    ha.stop(), dev.stop()
    return {"ok": got, "granted": granted, "msgs": ha.msgs}


def wildcard():
    dev_id, other_id = CREDS["device"][0], CREDS["other"][0]
    ha = Peer("controller", client_id="paho-ha-2")
    dev, other = Peer("device"), Peer("other")
    ha.connect(), dev.connect(), other.connect()
    granted = [ha.subscribe("tele/+/STATE", 1)[0], ha.subscribe("stat/#", 0)[0]]
    dev.publish(f"tele/{dev_id}/STATE", "A", qos=1)
    other.publish(f"tele/{other_id}/STATE", "B", qos=1)
    other.publish(f"stat/{other_id}/x/y", "C", qos=1)
    dev.publish(f"home/{dev_id}/not-matched", "D", qos=1)
    ha.wait(lambda: len(ha.msgs) >= 3)
    time.sleep(0.3)
    ha.stop(), dev.stop(), other.stop()
    return {"ok": True, "granted": granted, "topics": sorted(m["topic"] for m in ha.msgs), "qos": sorted(m["qos"] for m in ha.msgs)}


def retained():
    dev_id = CREDS["device"][0]
    dev = Peer("device")
    dev.connect()
    dev.publish(f"stat/{dev_id}/POWER", "ON", qos=1, retain=True)
    dev.publish(f"stat/{dev_id}/POWER", "OFF", qos=1, retain=True)
    dev.stop()
    ha = Peer("controller", client_id="paho-ha-3")
    ha.connect()
    ha.subscribe(f"stat/{dev_id}/POWER", 1)
    ha.wait(lambda: len(ha.msgs) >= 1)
    time.sleep(0.3)
    ha.stop()
    return {"ok": True, "msgs": ha.msgs}


def qos2():
    dev_id = CREDS["device"][0]
    ha = Peer("controller", client_id="paho-ha-4")
    dev = Peer("device")
    ha.connect(), dev.connect()
    granted = ha.subscribe(f"tele/{dev_id}/Q2", 2)
    published = [dev.publish(f"tele/{dev_id}/Q2", f"m{i}", qos=2) for i in range(5)]
    ha.wait(lambda: len(ha.msgs) >= 5)
    time.sleep(0.5)
    ha.stop(), dev.stop()
    return {"ok": all(published), "granted": granted, "payloads": [m["payload"] for m in ha.msgs], "qos": sorted(set(m["qos"] for m in ha.msgs))}


def persistent():
    dev_id = CREDS["device"][0]
    ha = Peer("controller", clean=False, client_id="paho-ha-persist")
    ha.connect()
    first_present = ha.session_present
    ha.subscribe(f"tele/{dev_id}/PERSIST", 1)
    ha.stop()
    dev = Peer("device")
    dev.connect()
    dev.publish(f"tele/{dev_id}/PERSIST", "while-away", qos=1)
    dev.stop()
    time.sleep(0.3)
    ha2 = Peer("controller", clean=False, client_id="paho-ha-persist")
    ha2.connect()
    ha2.wait(lambda: len(ha2.msgs) >= 1)
    again_present = ha2.session_present
    ha2.stop()
    # Clean up the parked session.
    ha3 = Peer("controller", clean=True, client_id="paho-ha-persist")
    ha3.connect()
    ha3.stop()
    return {"ok": True, "firstSessionPresent": first_present, "sessionPresent": again_present, "msgs": ha2.msgs}


def will():
    other_id = CREDS["other"][0]
    ha = Peer("controller", client_id="paho-ha-5")
    ha.connect()
    ha.subscribe(f"tele/{other_id}/LWT", 1)
    polite = Peer("other", will=(f"tele/{other_id}/LWT", "polite"))
    polite.connect()
    polite.stop()  # a DISCONNECT: no will
    time.sleep(0.3)
    crash = Peer("other", will=(f"tele/{other_id}/LWT", "Offline"))
    crash.connect()
    crash.kill()
    ha.wait(lambda: len(ha.msgs) >= 1)
    time.sleep(0.3)
    ha.stop()
    return {"ok": True, "payloads": [m["payload"] for m in ha.msgs]}


def takeover():
    dev_id = CREDS["device"][0]
    a = Peer("device")
    a.connect()
    b = Peer("device")
    b_rc = b.connect()
    a.wait(lambda: a.disconnect_rc is not None)
    a.c.loop_stop()
    ha = Peer("controller", client_id="paho-ha-6")
    ha.connect()
    ha.subscribe(f"tele/{dev_id}/AFTER", 1)
    b.publish(f"tele/{dev_id}/AFTER", "b-alive", qos=1)
    ha.wait(lambda: len(ha.msgs) >= 1)
    b.stop(), ha.stop()
    return {"ok": True, "newConnack": b_rc, "oldDisconnected": a.disconnect_rc is not None and a.disconnect_rc != 0, "msgs": [m["payload"] for m in ha.msgs]}


def acl():
    dev_id, other_id = CREDS["device"][0], CREDS["other"][0]
    dev = Peer("device")
    dev.connect()
    refused = dev.subscribe("#", 0)
    own = dev.subscribe(f"cmnd/{dev_id}/POWER", 0)
    ha = Peer("controller", client_id="paho-ha-7")
    ha.connect()
    ha.subscribe(f"tele/{other_id}/#", 1)
    dev.publish(f"tele/{other_id}/SPOOF", "spoof", qos=1)  # outside the device's publish ACL
    time.sleep(0.5)
    dev.stop(), ha.stop()
    bad = Peer("device")
    bad.c.username_pw_set(CREDS["device"][0], "wrong-password")
    rc = bad.connect()
    bad.c.loop_stop()
    return {"ok": True, "refusedGranted": refused, "ownGranted": own, "spoofDelivered": len(ha.msgs), "badPasswordConnack": rc}



class Peer5(Peer):
    """A paho MQTT 5 client: reason codes and properties recorded."""

    def __init__(self, who, client_id=None):
        super().__init__(who, client_id=client_id, protocol=mqtt.MQTTv5)
        self.c.on_connect = self._on_connect5
        self.c.on_message = self._on_message5
        self.c.on_disconnect = self._on_disconnect5
        self.c.on_subscribe = self._on_subscribe5

    def _on_connect5(self, c, u, flags, rc, props=None):
        self.connack = rc.value if hasattr(rc, "value") else rc
        self.session_present = bool(flags.get("session present"))
        self.connack_props = props.json() if props is not None else {}
        self._notify()

    def _on_message5(self, c, u, m):
        props = m.properties.json() if getattr(m, "properties", None) is not None else {}
        self.msgs.append({"topic": m.topic, "payload": m.payload.decode("utf-8", "replace"), "qos": m.qos, "retain": bool(m.retain), "props": props})
        self._notify()

    def _on_disconnect5(self, c, u, rc, props=None):
        self.disconnect_rc = rc.value if hasattr(rc, "value") else rc
        self._notify()

    def _on_subscribe5(self, c, u, mid, codes, props=None):
        self.granted = [x.value if hasattr(x, "value") else x for x in codes]
        self._notify()

    def connect5(self, clean_start=True, expiry=None):
        props = Properties(PacketTypes.CONNECT)
        if expiry is not None:
            props.SessionExpiryInterval = expiry
        self.c.connect(HOST, PORT, keepalive=30, clean_start=clean_start, properties=props)
        self.c.loop_start()
        self.wait(lambda: self.connack is not None)
        return self.connack

    def publish5(self, topic, payload, qos=1, **fields):
        props = Properties(PacketTypes.PUBLISH)
        for k, v in fields.items():
            setattr(props, k, v)
        info = self.c.publish(topic, payload, qos=qos, properties=props)
        info.wait_for_publish(WAIT)
        return info.is_published()


def v5_properties():
    dev_id = CREDS["device"][0]
    ha = Peer5("controller", client_id="paho-ha-8")
    dev = Peer5("device")
    ha_rc, dev_rc = ha.connect5(), dev.connect5()
    granted = ha.subscribe(f"tele/{dev_id}/V5", 1)
    dev.publish5(f"tele/{dev_id}/V5", '{"v": 5}', qos=1, ContentType="application/json", UserProperty=[("unit", "W"), ("src", "paho")], ResponseTopic=f"cmnd/{dev_id}/REPLY")
    ha.wait(lambda: len(ha.msgs) >= 1)
    ha.stop(), dev.stop()
    return {"ok": ha_rc == 0 and dev_rc == 0, "granted": granted, "msgs": ha.msgs, "connackProps": ha.connack_props}


def v5_session_expiry():
    dev_id = CREDS["device"][0]
    ha = Peer5("controller", client_id="paho-ha-v5persist")
    ha.connect5(clean_start=True, expiry=60)
    first_present = ha.session_present
    ha.subscribe(f"tele/{dev_id}/V5AWAY", 1)
    ha.stop()
    dev = Peer5("device")
    dev.connect5()
    dev.publish5(f"tele/{dev_id}/V5AWAY", "while-away", qos=1)
    dev.stop()
    time.sleep(0.3)
    ha2 = Peer5("controller", client_id="paho-ha-v5persist")
    ha2.connect5(clean_start=False, expiry=0)
    ha2.wait(lambda: len(ha2.msgs) >= 1)
    again_present = ha2.session_present
    ha2.stop()
    # Expiry 0 at the last connection: the session ends with it.
    ha3 = Peer5("controller", client_id="paho-ha-v5persist")
    ha3.connect5(clean_start=False)
    gone_present = ha3.session_present
    ha3.stop()
    return {"ok": True, "firstSessionPresent": first_present, "sessionPresent": again_present, "afterExpiryZero": gone_present, "msgs": [m["payload"] for m in ha2.msgs]}


def v5_refusals():
    dev = Peer5("device")
    dev.connect5()
    refused = dev.subscribe("#", 0)
    dev.stop()
    bad = Peer5("device")
    bad.c.username_pw_set(CREDS["device"][0], "wrong-password")
    rc = bad.connect5()
    bad.c.loop_stop()
    return {"ok": True, "refusedGranted": refused, "badPasswordConnack": rc}


def v31():
    dev_id = CREDS["device"][0]
    ha = Peer("controller", client_id="paho-ha-9")
    dev = Peer("device", protocol=mqtt.MQTTv31)
    ha.connect()
    rc = dev.connect()
    ha.subscribe(f"tele/{dev_id}/V31", 1)
    dev.publish(f"tele/{dev_id}/V31", "three-one", qos=1)
    ha.wait(lambda: len(ha.msgs) >= 1)
    ha.stop(), dev.stop()
    return {"ok": True, "connack": rc, "msgs": [m["payload"] for m in ha.msgs]}

out = {}
for name, fn in [("routing", routing), ("wildcard", wildcard), ("retained", retained), ("qos2", qos2), ("persistent", persistent), ("will", will), ("takeover", takeover), ("acl", acl), ("v5_properties", v5_properties), ("v5_session_expiry", v5_session_expiry), ("v5_refusals", v5_refusals), ("v31", v31)]:
    check(name, fn, out)
print(json.dumps(out))
