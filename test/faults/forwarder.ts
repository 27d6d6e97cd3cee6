/**
 * The relay of a fault-test lab (./lab.ts), run inside one network namespace: the test process
 * hands it listening loopback sockets (over the IPC channel), and it pipes every connection accepted
 * there to a TCP address, connecting from its own namespace. When either side ends or fails, the
 * other is destroyed, so a client sees a cut link the way it would see it directly.
 */
import net from 'node:net';

interface Listen {
  host: string;
  port: number;
  local: number;
}

function isListen(message: unknown): message is Listen {
  return typeof message === 'object' && message !== null && typeof (message as Listen).host === 'string' && typeof (message as Listen).port === 'number';
}

process.on('message', (message: unknown, handle: unknown) => {
  if (!isListen(message) || !(handle instanceof net.Server)) return;
  handle.on('connection', (down: net.Socket) => {
    const up = net.connect({ host: message.host, port: message.port, noDelay: true });
    down.setNoDelay(true);
    down.pipe(up);
    up.pipe(down);
    const end = (): void => {
      down.destroy();
      up.destroy();
    };
    down.on('error', end);
    up.on('error', end);
    down.on('close', end);
    up.on('close', end);
  });
  process.send?.({ listening: message.local });
});

// The test process ended (or closed the channel): nothing more to relay.
process.on('disconnect', () => process.exit(0));
