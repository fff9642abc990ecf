#!/usr/bin/env python3
"""Events a second a service drains: from the first event consumed until the metric COUNTED
reaches COUNT. Usage: drain_rate.py PORT COUNT COUNTED. One process polls /metrics over one
connection (a curl and an awk per look took half the machine)."""
import http.client
import sys
import time

port, count, counted = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
connection = http.client.HTTPConnection('127.0.0.1', port)


def metric(name):
    connection.request('GET', '/metrics')
    for line in connection.getresponse().read().decode().splitlines():
        if line.startswith(name + ' '):
            return float(line.split()[1])
    return 0.0


while metric('events_consumed_total') == 0:
    time.sleep(0.001)
start = time.monotonic()
while metric(counted) < count:
    time.sleep(0.002)
print('%.0f' % (count / (time.monotonic() - start)))
