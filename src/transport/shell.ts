// One long-lived shell that runs every command sent to a host: a small Perl driver there, framed requests in, framed
// output out, so a command costs a fork of the driver instead of a new SSH session and login shell — or, on the
// node itself (the agent's local transport), instead of a fork of the whole Node.js process.
import type {ClientChannel} from 'ssh2'
import type {ExecOptions} from './transport.js'
import {assertEnvName} from '../util/shell.js'

/**
 * The driver, run by sshd as `exec perl -e DRIVER` (Perl is part of every Debian and almost every Linux install; where
 * it is missing the transport falls back to a session per command). Each command is forked, made a session leader
 * (setsid: its process group is its own, as under sshd), given the request's environment and working directory and
 * exec'd as `/bin/sh -c <command>` — in sshd's session environment, the same one a session per command gets; without
 * `_`, as bash execs leave it. The driver sets env and cwd itself rather than a shell doing it (`K=v exec /bin/sh -c
 * 'cd dir && ...'`): one exec less per command, a few ms of CPU each on a slow machine. What the command sees is the
 * same: the variables exported, PWD the directory, OLDPWD the one before, and dash's own words when `cd` fails.
 * stdin is the request's bytes on a pipe, then EOF. stdout and stderr are pipes the driver relays in frames.
 *
 * Requests (client → driver): `R <id> <script bytes> <stdin bytes> <env bytes> <cwd bytes>\n<script><stdin><env><cwd>`
 * runs (env: `NAME=value` entries, each ended by a NUL byte; cwd empty: the driver's own); `I <id> <spec bytes> <data
 * bytes>\n<spec><data>` installs files in the driver itself (spec: `<bytes>\0<mode>\0<owner>\0<path>\0` per file, their
 * contents one after the other in data; answered like a command); `K <id> <SIGNAL>\n` signals the command's process group. Frames (driver → client): `<id> <kind> <bytes>\n<bytes>` with kind H (hello: the
 * driver's pid; id 0), o (stdout), e (stderr), F (the command could not start) and X (it ended: `c <code>` or
 * `s <SIGNAL>`, sent after its output). After a command's exit its pipes are relayed until they close or stay silent
 * for DRAIN ms (a background child may hold them forever), then the driver closes them, as sshd closes a session's.
 * The driver exits when its stdin closes (the connection ended); running commands keep running, as with sshd.
 */
export function driverSource(drainMs: number): string {
  return String.raw`
my $DRAIN = ${drainMs / 1000};
# setsid(2) by its number where the machine is known (from the ELF header of perl itself): loading POSIX for it
# costs more CPU than the rest of the driver's start, and makes every fork of the driver dearer.
my $SETSID = do { my ($exe, $elf);
  open($exe, '<', '/proc/self/exe') && binmode($exe) && read($exe, $elf, 20) == 20
    ? {62 => 112, 183 => 157, 243 => 157, 3 => 66, 40 => 66}->{unpack('v', substr($elf, 18, 2))} : undef };
# Signals ignored by whoever started the driver would stay ignored in every command: put them back to default there.
my @IGNORED = grep { ($SIG{$_} // '') eq 'IGNORE' } keys %SIG;
binmode STDIN; binmode STDOUT;
my (%cmds, %byfd, %bypid);
my $in = '';
$SIG{CHLD} = sub {};
$SIG{PIPE} = 'DEFAULT';
sub out { my ($s) = @_; my $off = 0;
  while ($off < length $s) { my $n = syswrite(STDOUT, $s, length($s) - $off, $off);
    if (!defined $n) { next if $!{EINTR}; exit 0 } $off += $n } }
sub frame { my ($id, $kind, $data) = @_; out("$id $kind " . length($data) . "\n" . $data) }
sub spawn { my ($id, $script, $stdin, $env, $cwd) = @_;
  my ($or, $ow, $er, $ew, $ir, $iw);
  unless (pipe($or, $ow) && pipe($er, $ew) && pipe($ir, $iw)) { frame($id, 'F', "pipe: $!"); return }
  my $pid = fork;
  if (!defined $pid) { frame($id, 'F', "fork: $!"); return }
  if ($pid == 0) {
    if (!defined $SETSID || syscall($SETSID) < 0) { require POSIX; POSIX::setsid() }
    open(STDIN, '<&', $ir); open(STDOUT, '>&', $ow); open(STDERR, '>&', $ew);
    $SIG{$_} = 'DEFAULT' for 'CHLD', @IGNORED;
    delete $ENV{_};
    for my $kv (split /\0/, $env) { my ($k, $v) = split /=/, $kv, 2; $ENV{$k} = $v }
    if (length $cwd) {
      unless (chdir $cwd) { syswrite(STDERR, "/bin/sh: 1: cd: can't cd to $cwd\n"); exit 1 }
      # As dash's cd writes it (logically): no empty or . parts, .. takes the part before away; a leading // stays.
      my $old = $ENV{PWD} // do { require Cwd; Cwd::getcwd() };
      my @p; for (split m{/}, ($cwd =~ m{^/} ? '' : "$old/") . $cwd) { next if $_ eq '' || $_ eq '.'; if ($_ eq '..') { pop @p } else { push @p, $_ } }
      my $pwd = ($cwd =~ m{^//(?!/)} ? '//' : '/') . join('/', @p);
      $ENV{OLDPWD} = $old; $ENV{PWD} = $pwd;
    }
    exec('/bin/sh', '-c', $script) or exit 127;
  }
  close $ow; close $ew; close $ir;
  if (length $stdin) {
    my $w = fork;
    # The writer holds nothing of the channel, so the driver's end closes the session at once.
    if (defined $w && $w == 0) { close $or; close $er; open(STDIN, '<', '/dev/null'); open(STDOUT, '>', '/dev/null'); open(STDERR, '>', '/dev/null'); my $off = 0;
      while ($off < length $stdin) { my $n = syswrite($iw, $stdin, length($stdin) - $off, $off);
        if (!defined $n) { next if $!{EINTR}; last } $off += $n }
      exit 0 }
  }
  close $iw;
  my $c = {id => $id, pid => $pid, fds => {}};
  for ([$or, 'o'], [$er, 'e']) { my ($fh, $kind) = @$_; $c->{fds}{fileno $fh} = [$fh, $kind]; $byfd{fileno $fh} = $c }
  $cmds{$id} = $c; $bypid{$pid} = $c;
}
sub finish { my ($c) = @_;
  for my $fd (keys %{$c->{fds}}) { close $c->{fds}{$fd}[0]; delete $byfd{$fd} }
  my $st = $c->{status};
  frame($c->{id}, 'X', ($st & 127) ? "s " . ($st & 127) : "c " . ($st >> 8));
  delete $cmds{$c->{id}};
}
# The I request: install files without starting a process (install.ts's script does the same with coreutils, where
# there is no driver): each file staged beside its destination under umask 077, compared, owner and mode set, the
# previous content kept as the backup (a hard link), renamed into place. An outcome line per file as the script prints
# it; an error ends the request with its message and exit 1, as the script's set -e; the files before it stay.
sub copied { my ($from, $to) = @_;
  my @st = stat $from or return 0;
  open(my $i, '<:raw', $from) or return 0; my $c = do { local $/; <$i> }; close $i;
  my $u = umask 077; my $ok = open(my $o, '>:raw', $to); umask $u;
  $ok && (print $o $c) && close($o) or return 0;
  chmod $st[2] & 07777, $to; chown $st[4], $st[5], $to; utime $st[8], $st[9], $to; 1 }
sub install { my ($id, $spec, $data) = @_;
  my @f = split /\0/, $spec, -1; my ($out, $at) = ('', 0);
  my $end = sub { my ($err) = @_; frame($id, 'o', $out) if length $out;
    if (defined $err) { frame($id, 'e', "$err\n"); frame($id, 'X', 'c 1') } else { frame($id, 'X', 'c 0') } };
  # Every directory first, as the script makes them before its first file.
  for (my $i = 0; 4 * $i + 3 < @f; $i++) {
    (my $dir = $f[4 * $i + 3]) =~ s{/[^/]*$}{};
    next if !length $dir || -d $dir;
    my $p = '';
    for my $part (split m{/}, $dir) { next if $part eq ''; $p .= "/$part"; next if -d $p;
      mkdir $p or -d $p or return $end->("mkdir: cannot create directory '$p': $!") } }
  for (my $i = 0; 4 * $i + 3 < @f; $i++) {
    my ($bytes, $mode, $owner, $path) = @f[4 * $i .. 4 * $i + 3];
    my $content = substr($data, $at, $bytes); $at += $bytes;
    my $perm = oct $mode;
    my ($uid, $gid) = (-1, -1);
    if (length $owner) { my ($u, $g) = split /:/, $owner, 2;
      $uid = $u =~ /^\d+$/ ? $u : (getpwnam $u)[2];
      return $end->("chown: invalid user: '$owner'") unless defined $uid;
      if (defined $g) { $gid = $g eq '' ? (getpwuid $uid)[3] : $g =~ /^\d+$/ ? $g : (getgrnam $g)[2];
        return $end->("chown: invalid group: '$owner'") unless defined $gid } }
    my ($staged, $backup) = ("$path.shoal-new", "$path.shoal-bak");
    unlink $staged if -e $staged || -l $staged;
    if (-f $path && -s _ == $bytes) {
      my $old; if (open(my $cur, '<:raw', $path)) { $old = do { local $/; <$cur> }; close $cur }
      if (defined $old && $old eq $content) {
        !length $owner || chown $uid, $gid, $path or return $end->("chown: changing ownership of '$path': $!");
        chmod $perm, $path or return $end->("chmod: changing permissions of '$path': $!");
        $out .= "__shoal_install=$i unchanged\n"; next } }
    my $u = umask 077; my $ok = open(my $fh, '>:raw', $staged); umask $u;
    $ok or return $end->("cannot create '$staged': $!");
    unless ((print $fh $content) && close $fh) { my $e = "write error: '$staged': $!"; unlink $staged; return $end->($e) }
    unless (!length $owner || chown $uid, $gid, $staged) { my $e = "chown: changing ownership of '$staged': $!"; unlink $staged; return $end->($e) }
    unless (chmod $perm, $staged) { my $e = "chmod: changing permissions of '$staged': $!"; unlink $staged; return $end->($e) }
    my $replacing = -f $path;
    unlink $backup if -e $backup || -l $backup;
    !$replacing || link($path, $backup) || copied($path, $backup) or return $end->("cannot keep '$path' as '$backup': $!");
    rename $staged, $path or return $end->("mv: cannot move '$staged' to '$path': $!");
    $out .= "__shoal_install=$i " . ($replacing ? 'replaced' : 'created') . "\n" }
  $end->(undef) }
sub requests {
  while ((my $nl = index($in, "\n")) >= 0) {
    my @h = split / /, substr($in, 0, $nl);
    if ($h[0] eq 'R') {
      my $need = $nl + 1 + $h[2] + $h[3] + $h[4] + $h[5];
      return if length($in) < $need;
      my @part; my $at = $nl + 1;
      for my $n (@h[2 .. 5]) { push @part, substr($in, $at, $n); $at += $n }
      substr($in, 0, $need) = '';
      spawn($h[1], @part);
    } elsif ($h[0] eq 'I') {
      my $need = $nl + 1 + $h[2] + $h[3];
      return if length($in) < $need;
      my ($spec, $data) = (substr($in, $nl + 1, $h[2]), substr($in, $nl + 1 + $h[2], $h[3]));
      substr($in, 0, $need) = '';
      install($h[1], $spec, $data);
    } else {
      substr($in, 0, $nl + 1) = '';
      my $c = $cmds{$h[1]};
      kill($h[2], -$c->{pid}) if $h[0] eq 'K' && $c;
    }
  }
}
frame(0, 'H', "$$");
while (1) {
  my $rin = ''; vec($rin, 0, 1) = 1;
  vec($rin, $_, 1) = 1 for keys %byfd;
  my $now = Time::HiRes::time();
  # Idle (no command running) it sleeps until a request comes: an agent's driver waits for days between changes.
  my $wait = %cmds ? 0.25 : undef;
  for my $c (values %cmds) { next unless defined $c->{status};
    my $left = $c->{quiet} + $DRAIN - $now; $wait = $left if $left < $wait }
  $wait = 0 if defined $wait && $wait < 0;
  my $n = select(my $rout = $rin, undef, undef, $wait);
  if ($n > 0) {
    if (vec($rout, 0, 1)) { my $r = sysread(STDIN, $in, 65536, length $in);
      if (defined $r) { exit 0 if $r == 0; requests() } elsif (!$!{EINTR}) { exit 0 } }
    for my $fd (keys %byfd) { next unless vec($rout, $fd, 1); my $c = $byfd{$fd} or next;
      my ($fh, $kind) = @{$c->{fds}{$fd}};
      my $r = sysread($fh, my $buf, 65536);
      next if !defined $r && $!{EINTR};
      if ($r) { frame($c->{id}, $kind, $buf); $c->{quiet} = Time::HiRes::time() }
      else { close $fh; delete $c->{fds}{$fd}; delete $byfd{$fd} } }
  }
  while ((my $pid = waitpid(-1, 1)) > 0) { # 1: WNOHANG
    my $c = delete $bypid{$pid} or next;
    $c->{status} = $?; $c->{quiet} = Time::HiRes::time();
  }
  $now = Time::HiRes::time();
  for my $c (values %cmds) {
    next unless defined $c->{status};
    finish($c) if !%{$c->{fds}} || $now - $c->{quiet} >= $DRAIN;
  }
}
`
}

/** The exec request that starts the driver; `HELLO_MISSING` on stdout when the host has no Perl. */
export function driverCommand(drainMs: number): string {
  const quoted = `'${driverSource(drainMs).replace(/'/g, `'\\''`)}'`
  return `command -v perl >/dev/null 2>&1 || { echo ${NO_DRIVER}; exit 0; }; exec perl -MTime::HiRes -e ${quoted}`
}

export const NO_DRIVER = '__shoal_no_perl'

export interface ShellHandlers {
  onStdout(chunk: Buffer): void
  onStderr(chunk: Buffer): void
}

export type ShellExit = {code: number | null; signal: string | null; error?: string}

/** The bytes a driver is behind: an SSH channel to it, or the stdio of a driver started on this machine. */
export interface ShellPipe {
  write(bytes: Buffer): void
  /** Close the driver's input: it exits, and commands still running go on, as with sshd. */
  end(): void
  /** Cut the driver off at once (it printed something that is not a frame). */
  destroy(): void
  onData(listener: (chunk: Buffer) => void): void
  onStderr(listener: (chunk: Buffer) => void): void
  onClose(listener: () => void): void
}

export function channelPipe(channel: ClientChannel): ShellPipe {
  return {
    write: (bytes) => void channel.write(bytes),
    end: () => void channel.end(),
    destroy: () => void channel.close(),
    onData: (listener) => void channel.on('data', listener),
    onStderr: (listener) => void channel.stderr.on('data', listener),
    onClose: (listener) => void channel.once('close', listener),
  }
}

/**
 * A command for the driver: the script for `/bin/sh -c`, run in `cwd` (absolute) with `env` added to the driver's; or,
 * with `install`, files the driver installs itself (the script, the same install, is for hosts without a driver).
 */
export interface DriverCommand {
  script: string
  env?: ExecOptions['env']
  cwd?: string | undefined
  install?: ExecOptions['install']
}

/** Linux's signal numbers (the driver reports a number: naming them there would load Perl's Config for each driver). */
const LINUX_SIGNALS = ['', 'HUP', 'INT', 'QUIT', 'ILL', 'TRAP', 'ABRT', 'BUS', 'FPE', 'KILL', 'USR1', 'SEGV', 'USR2', 'PIPE', 'ALRM', 'TERM', 'STKFLT', 'CHLD', 'CONT', 'STOP', 'TSTP', 'TTIN', 'TTOU', 'URG', 'XCPU', 'XFSZ', 'VTALRM', 'PROF', 'WINCH', 'IO', 'PWR', 'SYS']

function signalName(signal: number): string {
  return `SIG${LINUX_SIGNALS[signal] || (signal >= 34 && signal <= 64 ? `RT${signal - 34}` : String(signal))}`
}

/** The env block of a request: `NAME=value\0` per variable, names checked as a shell would take them. */
function envBlock(env: ExecOptions['env'] = {}): Buffer {
  return Buffer.from(Object.keys(env).sort().map((name) => {
    const value = String(env[name])
    assertEnvName(name)
    if (value.includes('\0')) throw new Error(`the value of environment variable ${name} holds a NUL byte`)
    return `${name}=${value}\0`
  }).join(''), 'utf8')
}

/** The spec of an install request: `<bytes>\0<mode>\0<owner>\0<path>\0` per file, checked against stdin's length. */
function installSpec(files: NonNullable<ExecOptions['install']>, stdinBytes: number): Buffer {
  let total = 0
  const fields = files.map((file) => {
    if (!/^[0-7]{3,4}$/.test(file.mode)) throw new Error(`install of ${file.path}: mode ${file.mode} is not octal`)
    if (!(Number.isInteger(file.bytes) && file.bytes >= 0)) throw new Error(`install of ${file.path}: size ${file.bytes} is not a byte count`)
    for (const text of [file.path, file.owner ?? '']) if (text.includes('\0')) throw new Error(`install of ${JSON.stringify(file.path)}: a NUL byte in its path or owner`)
    if (!file.path.startsWith('/')) throw new Error(`install of ${file.path}: the path must be absolute`)
    total += file.bytes
    return `${file.bytes}\0${file.mode}\0${file.owner ?? ''}\0${file.path}\0`
  })
  if (total !== stdinBytes) throw new Error(`install: the files' sizes add up to ${total} bytes, stdin holds ${stdinBytes}`)
  return Buffer.from(fields.join(''), 'utf8')
}

interface Pending {
  handlers: ShellHandlers
  resolve(exit: ShellExit): void
}

/** The client side of one driver: writes requests, parses frames, routes them to the command they belong to. */
export class RemoteShell {
  private readonly pending = new Map<number, Pending>()
  private nextId = 1
  private buffer: Buffer = Buffer.alloc(0)
  private closedFlag = false
  /** Requests and frames exchanged, for the benchmark's breakdown. */
  readonly counters = {commands: 0, bytesOut: 0, bytesIn: 0}
  private hello?: (pid: number | undefined) => void
  /** The driver's pid once it said hello; undefined when it could not start (no Perl, or it died). */
  readonly ready: Promise<number | undefined>
  private stderr = ''

  constructor(private readonly channel: ShellPipe) {
    this.ready = new Promise((resolve) => (this.hello = resolve))
    channel.onData((chunk) => this.data(chunk))
    channel.onStderr((chunk) => {
      if (this.stderr.length < 4096) this.stderr += chunk.toString('utf8')
    })
    channel.onClose(() => this.closed())
  }

  get closed_(): boolean {
    return this.closedFlag
  }

  /** What the driver printed on stderr (a Perl error, when it could not start). */
  get diagnostics(): string {
    return this.stderr.trim()
  }

  /** Start a command; resolves when it ended and its output was relayed. Returns its id (for `kill`) at once. */
  run(command: DriverCommand, stdin: Buffer | undefined, handlers: ShellHandlers): {id: number; done: Promise<ShellExit>} {
    const body = Buffer.from(command.script, 'utf8')
    const input = stdin ?? Buffer.alloc(0)
    const env = envBlock(command.env)
    const cwd = Buffer.from(command.cwd ?? '', 'utf8')
    const id = this.nextId++
    const spec = command.install ? installSpec(command.install, input.length) : undefined
    const done = new Promise<ShellExit>((resolve) => {
      if (this.closedFlag) return resolve({code: null, signal: null, error: 'the shell connection was closed'})
      this.pending.set(id, {handlers, resolve})
      if (spec) this.write(Buffer.concat([Buffer.from(`I ${id} ${spec.length} ${input.length}\n`), spec, input]))
      else this.write(Buffer.concat([Buffer.from(`R ${id} ${body.length} ${input.length} ${env.length} ${cwd.length}\n`), body, input, env, cwd]))
      this.counters.commands++
    })
    return {id, done}
  }

  /**
   * Run a command to its end, or past its deadline: then its process group gets TERM, KILL a grace later, and after
   * another grace it is given up on (its output so far is what there is).
   */
  async command(command: DriverCommand, stdin: Buffer | undefined, handlers: ShellHandlers, deadline: {timeoutMs: number; killGraceMs: number}): Promise<ShellExit & {timedOut: boolean}> {
    const {id, done} = this.run(command, stdin, handlers)
    let timedOut = false
    let ended = false
    const timers: NodeJS.Timeout[] = []
    const grace = (): Promise<unknown> => Promise.race([done, new Promise((resolve) => timers.push(setTimeout(resolve, deadline.killGraceMs)))])
    timers.push(setTimeout(() => {
      timedOut = true
      void (async () => {
        for (const signal of ['TERM', 'KILL']) {
          if (ended) return
          this.kill(id, signal)
          await grace()
        }
        if (!ended) this.abandon(id)
      })()
    }, deadline.timeoutMs))
    const exit = await done
    ended = true
    for (const timer of timers) clearTimeout(timer)
    return {...exit, timedOut}
  }

  /** Signal a command's process group (TERM, KILL, ...). */
  kill(id: number, signal: string): void {
    if (!this.closedFlag && this.pending.has(id)) this.write(Buffer.from(`K ${id} ${signal}\n`))
  }

  /** Signal the process group of every command still running. */
  killAll(signal: string): void {
    for (const id of this.pending.keys()) this.kill(id, signal)
  }

  /** Stop waiting for a command (it did not end after KILL); late frames for it are dropped. */
  abandon(id: number): void {
    const pending = this.pending.get(id)
    this.pending.delete(id)
    pending?.resolve({code: null, signal: null})
  }

  close(): void {
    if (!this.closedFlag) this.channel.end()
  }

  private write(bytes: Buffer): void {
    this.counters.bytesOut += bytes.length
    this.channel.write(bytes)
  }

  private data(chunk: Buffer): void {
    this.counters.bytesIn += chunk.length
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk])
    for (;;) {
      const newline = this.buffer.indexOf(10)
      if (newline < 0) return
      const header = this.buffer.subarray(0, newline).toString('latin1')
      if (header === NO_DRIVER) {
        this.hello?.(undefined)
        this.buffer = this.buffer.subarray(newline + 1)
        continue
      }
      const match = /^(\d+) ([HoeFX]) (\d+)$/.exec(header)
      if (!match) {
        // Not the driver speaking (e.g. a login script printed something): this shell cannot be trusted.
        this.stderr += `unexpected output from the shell driver: ${JSON.stringify(header.slice(0, 200))}\n`
        this.channel.destroy()
        return
      }
      const size = Number(match[3])
      if (this.buffer.length < newline + 1 + size) return
      const body = this.buffer.subarray(newline + 1, newline + 1 + size)
      this.buffer = this.buffer.subarray(newline + 1 + size)
      this.frame(Number(match[1]), match[2]!, body)
    }
  }

  private frame(id: number, kind: string, body: Buffer): void {
    if (kind === 'H') return this.hello?.(Number(body.toString('latin1')))
    const pending = this.pending.get(id)
    if (!pending) return
    if (kind === 'o') pending.handlers.onStdout(body)
    else if (kind === 'e') pending.handlers.onStderr(body)
    else {
      this.pending.delete(id)
      const text = body.toString('utf8')
      if (kind === 'F') pending.resolve({code: null, signal: null, error: text})
      else if (text.startsWith('s ')) pending.resolve({code: null, signal: signalName(Number(text.slice(2)))})
      else pending.resolve({code: Number(text.slice(2)), signal: null})
    }
  }

  private closed(): void {
    this.closedFlag = true
    this.hello?.(undefined)
    for (const [id, pending] of this.pending) {
      this.pending.delete(id)
      pending.resolve({code: null, signal: null})
    }
  }
}
