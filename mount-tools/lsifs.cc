// lsifs: the mount daemon. Serves the LSIs delivered to one extension as
// read-only raw image files (see lsifs(8)).
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <syslog.h>
#include <unistd.h>
#ifdef LSIFS_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/access/recorder.h"
#include "core/catalog/catalog.h"
#include "core/control/control.h"
#include "core/metrics/http_server.h"
#include "core/metrics/metrics.h"
#include "core/origin/link.h"
#include "core/region/client.h"
#include "core/service/forward.h"
#include "core/service/service.h"
#include "core/service/successors.h"
#include "core/site/site.h"
#include "core/store/store.h"
#include "core/util/file.h"
#include "core/util/log.h"
#include "core/util/numbers.h"
#include "fs/lsifs_fs.h"

using namespace lsifs;

namespace {

void Usage(FILE* to) {
  std::fprintf(
      to,
      "lsifs - serve the LSIs delivered to an extension as read-only image files\n\n"
      "Usage: lsifs STORE MOUNTPOINT -e EXT [-f] [-o OPTIONS]\n"
      "       lsifs --region https://HOST:PORT SITE_DIR MOUNTPOINT -e EXT [-f] [-o OPTIONS]\n\n"
      "  -e, --extension EXT   the extension whose key opens the LSIs (required)\n"
      "  -f, --foreground      stay in the foreground and log to stderr\n"
      "      --region URL      a site of the two-site form: LSIs, layers and base blocks come\n"
      "                        from the region's lsid at URL (https://HOST:PORT) over mutual\n"
      "                        TLS; SITE_DIR holds this site's key (keys/EXT.key), what was\n"
      "                        pulled, the spill and the recorded sessions; never the\n"
      "                        provider key. Made on the first mount\n"
      "      --cert FILE       the site's certificate (default SITE_DIR/tls/EXT.crt)\n"
      "      --key FILE        its key, mode 0600 (default SITE_DIR/tls/EXT.key)\n"
      "      --ca FILE         the region's CA certificate (default SITE_DIR/tls/ca.crt)\n"
      "  -o OPTIONS            comma-separated; lsifs's own:\n"
      "       origin_latency=T        one round trip per origin request (40ms, 1.5s, 250us)\n"
      "       origin_bandwidth=B      shared origin bandwidth (200Mbit, 1Gbit, 25MB)\n"
      "       low_share=S             the most of the bandwidth low-priority assemblies take\n"
      "                               while reads wait on the origin (default 0.25)\n"
      "       preassemble=auto|off    pre-assemble (low priority) when a session ends and\n"
      "                               when a volume gets a new snapshot (default auto)\n"
      "       max_threads=N           FUSE worker threads (default 16; 80 with a latency,\n"
      "                               so reads waiting on the origin do not block others)\n"
      "       expand=on|off           read-time expansion: a miss also brings the blocks that\n"
      "                               followed it in past sessions (default on)\n"
      "       expand_blocks=N         successors in the same origin request, at most (8; <= 64)\n"
      "       expand_ahead=N          blocks fetched ahead per expanded block read (32)\n"
      "       expand_budget=SIZE      bytes expansion may fetch per session (128M)\n"
      "       expand_share=S          a successor must have followed its block in at least\n"
      "                               this share of the sessions that read it (0.5)\n"
      "       hydrate=on|off          fetch every remaining block of an open image in the\n"
      "                               background, last on the link (default off)\n"
      "       spill=persist|memory    keep fetched base blocks in the store for the next mount\n"
      "                               of the LSI (default persist), or only while it is open\n"
      "       sequential=skip|learn   a session that reads a whole image in order (cp, cmp, a\n"
      "                               backup) is a copy, not a restore: not learned from\n"
      "                               (default skip; lsictl access show marks it)\n"
      "       busy=refuse|wait        SIGTERM or Ctrl-C while an image is open (a loop device,\n"
      "                               a reader): refuse to stop and say what holds it, or\n"
      "                               stop when the last one is closed (default refuse)\n"
      "       metrics=ADDR:PORT       serve Prometheus metrics at http://ADDR:PORT/metrics\n"
      "                               (off by default; e.g. 127.0.0.1:9464)\n"
      "       metrics_textfile=PATH   write the same metrics to PATH every 15 s, for\n"
      "                               node-exporter's textfile collector (*.prom); removed\n"
      "                               when lsifs exits\n"
      "       pidfile=PATH            write the daemon's pid to PATH (mode 0644) once the\n"
      "                               mount is ready; removed when lsifs exits\n"
      "       cache_size=SIZE         decrypted-block cache, one for all images (default 64M;\n"
      "                               0 for none; at most half the memory)\n"
      "       read_ahead_kb=N         kernel readahead of the mount (default 1024)\n"
      "       record=1|0              record reads into the co-access database (default 1)\n"
      "       session_idle=T          a session ends this long after the last close (30s)\n"
      "       region_timeout=T        --region: how long a request to the region may go\n"
      "                               without a byte moving (10s); a read fails with EIO\n"
      "                               after three (a region gone or hung), and works again\n"
      "                               when the region answers; a slow link is no timeout\n"
      "                               (down to 16 KiB/s)\n"
      "       half_life=N, successor_window=N, successor_top_k=N, max_stat_blocks=N,\n"
      "       keep_sessions=N         statistics parameters, kept in the store's database\n"
      "                               (defaults 8, 16, 16, 1048576, 32)\n"
      "     any other option goes to FUSE (allow_other, default_permissions,\n"
      "     auto_unmount, ...). The mount is always read-only.\n"
      "  -h, --help            this help\n"
      "      --version         print the version\n\n"
      "The mount shows the LSIs delivered to EXT (lsictl restore): MOUNTPOINT/by-id/<lsi-id>.img,\n"
      "MOUNTPOINT/<volume>.img (from the latest restore of that volume without --snapshot)\n"
      "and live counters in MOUNTPOINT/.lsifs/.\n"
      "Unmount with: fusermount3 -u MOUNTPOINT (or SIGTERM); a mount whose images are\n"
      "open refuses, as umount does, and says what holds it.\n\n"
      "Example:\n"
      "  lsictl -s /srv/lsifs restore -e site-a -v vol-db\n"
      "  lsifs /srv/lsifs /mnt/lsi -e site-a -o origin_latency=40ms,origin_bandwidth=200Mbit\n"
      "  losetup -r -f --show /mnt/lsi/vol-db.img\n\n"
      "See lsifs(8), mount.lsifs(8), lsictl(8).\n");
}

// An option of two words: `yes` sets *out, `no` clears it, else an error
// that names both (and *out keeps its default).
Status ParseChoice(const std::string& key, const std::string& value, const char* yes,
                   const char* no, bool* out) {
  if (value != yes && value != no) {
    return Status::InvalidArgument("use " + key + "=" + yes + " or " + key + "=" + no);
  }
  *out = value == yes;
  return Status::Ok();
}

int Fail(const std::string& msg) {
  std::fprintf(stderr, "lsifs: %s\n", PrintableLine(msg).c_str());
  return 1;
}

bool g_foreground = false;
// Standard error is the journal (systemd's JOURNAL_STREAM names it): syslog
// reaches the same journal, so each line is written once, to standard error,
// with its level in the prefix journald reads.
bool g_stderr_is_journal = false;
std::mutex g_log_mu;

bool StderrIsJournal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  unsigned long long dev = 0, ino = 0;
  if (stream == nullptr || std::sscanf(stream, "%llu:%llu", &dev, &ino) != 2) return false;
  struct stat st;
  return ::fstat(STDERR_FILENO, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

void LogLine(const std::string& text) {
  const std::string line = PrintableLine(text);
  if (g_foreground) {
    std::lock_guard<std::mutex> lock(g_log_mu);
    // "<4>": LOG_WARNING, as the syslog line would have had.
    std::fprintf(stderr, g_stderr_is_journal ? "<4>%s\n" : "lsifs: %s\n", line.c_str());
    std::fflush(stderr);
    if (g_stderr_is_journal) return;
  }
  syslog(LOG_WARNING, "%s", line.c_str());
}

// Tells a service manager (systemd, Type=notify) how the daemon is doing:
// READY=1, STOPPING=1, STATUS=... A no-op without NOTIFY_SOCKET, and in a
// build without libsystemd.
void Notify(const std::string& state) {
#ifdef LSIFS_HAVE_SYSTEMD
  (void)::sd_notify(0, state.c_str());
#else
  (void)state;
#endif
}

// -o pidfile=PATH. The file is made under a temporary name beside PATH
// before the mount, so that a folder lsifs cannot write in is refused on the
// terminal, and renamed into place once the daemon has its final pid: PATH
// never holds a partial or a previous pid while lsifs starts (a stale one is
// replaced). It is removed when the daemon exits, if it still names it.
class PidFile {
 public:
  ~PidFile() { Remove(); }

  Status Prepare(const std::string& path) {
    path_ = path;
    const std::string dir = DirName(path);
    if (::access(dir.c_str(), W_OK) != 0) return Status::FromErrno("cannot write in " + dir, errno);
    Status s = writer_.Open(dir, path, 0644);
    // Readable by all, as pid files are, whatever the umask.
    if (s.ok() && ::fchmod(writer_.file().fd(), 0644) != 0) s = Status::FromErrno(path, errno);
    if (!s.ok()) writer_.Abandon();
    return s;
  }
  Status Publish() {
    if (path_.empty()) return Status::Ok();
    pid_ = ::getpid();
    const std::string text = std::to_string(pid_) + "\n";
    LSIFS_RETURN_IF_ERROR(writer_.Write(AsBytes(text)));
    return writer_.Commit(/*replace=*/true);
  }
  void Remove() {
    writer_.Abandon();
    // Only the daemon that wrote it removes it (not a parent that exits).
    if (pid_ == 0 || pid_ != ::getpid()) return;
    std::string text;
    if (ReadWholeFile(path_, 64, &text).ok() && text == std::to_string(pid_) + "\n") {
      ::unlink(path_.c_str());
    }
    pid_ = 0;
  }

 private:
  std::string path_;
  AtomicFileWriter writer_;
  pid_t pid_ = 0;
};

// Goes to the background as fuse_daemonize does (a new session, / as the
// working directory, the standard streams on /dev/null), except that the
// parent waits for the daemon's ReportReady and only then exits: 0 when it
// is serving, so that whoever ran lsifs (a script, mount(8), systemd's
// Type=forking) finds the mount answering and the pid file written; 1 with
// the daemon's reason when it failed. Returns in the daemon only.
int g_ready_fd = -1;

Status Daemonize() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Status::FromErrno("pipe", errno);
  pid_t pid = ::fork();
  if (pid < 0) return Status::FromErrno("fork", errno);
  if (pid > 0) {
    ::close(fds[1]);
    std::string said;
    char buf[512];
    for (;;) {
      ssize_t n = ::read(fds[0], buf, sizeof buf);
      if (n > 0) said.append(buf, static_cast<size_t>(n));
      if (n == 0 || (n < 0 && errno != EINTR)) break;
    }
    if (said == "ready") ::_exit(0);
    if (said.empty()) said = "the daemon exited before the mount was ready (see the system log)";
    std::fprintf(stderr, "lsifs: %s\n", PrintableLine(said).c_str());
    ::_exit(1);
  }
  ::close(fds[0]);
  g_ready_fd = fds[1];
  if (::setsid() < 0) return Status::FromErrno("setsid", errno);
  if (::chdir("/") != 0) return Status::FromErrno("chdir /", errno);
  int null = ::open("/dev/null", O_RDWR);
  if (null < 0) return Status::FromErrno("/dev/null", errno);
  for (int fd : {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO}) ::dup2(null, fd);
  if (null > STDERR_FILENO) ::close(null);
  return Status::Ok();
}

// Ends the wait of Daemonize's parent: "" when serving, else the reason.
void ReportReady(const std::string& failure) {
  if (g_ready_fd < 0) {
    if (!failure.empty()) std::fprintf(stderr, "lsifs: %s\n", PrintableLine(failure).c_str());
    return;
  }
  const std::string said = failure.empty() ? "ready" : failure;
  ssize_t ignored = ::write(g_ready_fd, said.data(), said.size());
  (void)ignored;
  ::close(g_ready_fd);
  g_ready_fd = -1;
}

void SetReadAhead(const std::string& mountpoint, uint64_t kb) {
  struct stat st;
  if (::stat(mountpoint.c_str(), &st) != 0) return;
  char path[96];
  std::snprintf(path, sizeof path, "/sys/class/bdi/%u:%u/read_ahead_kb", major(st.st_dev),
                minor(st.st_dev));
  FILE* f = std::fopen(path, "w");
  bool ok = f != nullptr && std::fprintf(f, "%llu\n", static_cast<unsigned long long>(kb)) > 0;
  if (f != nullptr && std::fclose(f) != 0) ok = false;
  if (!ok) {
    LogLine(std::string("could not set ") + path +
            " (sequential reads keep the kernel's "
            "default readahead): " +
            std::strerror(errno));
  }
}

// Stop signals reach the daemon through a pipe: a handler may only write,
// and whether to stop (is an image open?) is decided by a thread.
int g_stop_pipe[2] = {-1, -1};
constexpr unsigned char kEndStopper = 0xff;

void OnStopSignal(int sig) {
  unsigned char c = static_cast<unsigned char>(sig);
  ssize_t ignored = ::write(g_stop_pipe[1], &c, 1);
  (void)ignored;
}

Status InstallStopSignals() {
  if (::pipe2(g_stop_pipe, O_CLOEXEC) != 0) return Status::FromErrno("pipe", errno);
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = OnStopSignal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) {
    if (::sigaction(sig, &sa, nullptr) != 0) return Status::FromErrno("sigaction", errno);
  }
  ::signal(SIGPIPE, SIG_IGN);
  return Status::Ok();
}

// Who holds files under `mountpoint` open, as umount's users would look:
// loop devices backed by them, and processes with them open.
std::string DescribeHolders(const std::string& mountpoint) {
  namespace fs = std::filesystem;
  const std::string prefix = mountpoint + "/";
  std::vector<std::string> who;
  std::error_code ec;
  for (const auto& dev : fs::directory_iterator("/sys/block", ec)) {
    std::string name = dev.path().filename();
    if (name.rfind("loop", 0) != 0) continue;
    std::ifstream in(dev.path() / "loop" / "backing_file");
    std::string backing;
    if (std::getline(in, backing) && backing.rfind(prefix, 0) == 0) who.push_back("/dev/" + name);
  }
  for (const auto& proc : fs::directory_iterator("/proc", ec)) {
    std::string pid = proc.path().filename();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    if (pid == std::to_string(::getpid())) continue;
    std::error_code fd_ec;
    for (const auto& fd : fs::directory_iterator(proc.path() / "fd", fd_ec)) {
      std::error_code link_ec;
      std::string target = fs::read_symlink(fd.path(), link_ec);
      if (link_ec || target.rfind(prefix, 0) != 0) continue;
      std::ifstream comm(proc.path() / "comm");
      std::string name;
      std::getline(comm, name);
      who.push_back("pid " + pid + " (" + name + ")");
      break;
    }
  }
  std::string out;
  for (const auto& w : who) out += (out.empty() ? "" : ", ") + w;
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> positional;
  std::string extension;
  std::vector<std::string> fuse_opts;
  WanProfile wan;
  uint64_t cache_bytes = 64ull << 20;
  uint64_t read_ahead_kb = 1024;
  bool record = true;
  std::chrono::microseconds session_idle = std::chrono::seconds(30);
  CoAccessSettings learning;
  double low_share = LinkOptions().low_share;
  bool preassemble = true;
  int max_threads = 0;  // 0: from the link
  ExpansionOptions expansion;
  // Read-time expansion needs no minimum of sessions (the predictor wants
  // two before it pre-assembles), only the share: a miss of the block is
  // itself evidence that its cluster is being read.
  PlanOptions confidence;
  confidence.min_support = 0;
  bool hydrate = false;
  bool persist_spill = true;
  bool wait_when_busy = false;
  bool learn_sequential = false;
  std::string pidfile_path;
  std::string metrics_address, metrics_textfile;
  std::string region_url, region_cert, region_key, region_ca;
  std::chrono::microseconds region_timeout = std::chrono::seconds(10);

  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      Usage(stdout);
      return 0;
    } else if (a == "--version") {
      std::printf("lsifs %s\n", LSIFS_VERSION);
      return 0;
    } else if (a == "-f" || a == "--foreground") {
      g_foreground = true;
    } else if (a == "--region" || a == "--cert" || a == "--key" || a == "--ca") {
      if (++i == argc) return Fail(a + " needs a value (see: lsifs --help)");
      (a == "--region" ? region_url
       : a == "--cert" ? region_cert
       : a == "--key"  ? region_key
                       : region_ca) = argv[i];
    } else if (a == "-e" || a == "--extension") {
      if (++i == argc) return Fail("-e needs an extension name");
      extension = argv[i];
    } else if (a == "-o") {
      if (++i == argc) return Fail("-o needs options");
      std::string list = argv[i];
      size_t start = 0;
      while (start <= list.size()) {
        size_t comma = list.find(',', start);
        std::string opt =
            list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        start = comma == std::string::npos ? list.size() + 1 : comma + 1;
        if (opt.empty()) continue;
        size_t eq = opt.find('=');
        std::string key = opt.substr(0, eq);
        std::string value = eq == std::string::npos ? "" : opt.substr(eq + 1);
        Status s;
        if (key == "origin_latency") {
          s = ParseLatency(value, &wan.latency);
        } else if (key == "origin_bandwidth") {
          s = ParseBandwidth(value, &wan.bytes_per_second);
        } else if (key == "low_share") {
          s = ParseShare(value, &low_share);
        } else if (key == "preassemble") {
          s = ParseChoice(key, value, "auto", "off", &preassemble);
        } else if (key == "expand") {
          s = ParseChoice(key, value, "on", "off", &expansion.enabled);
        } else if (key == "expand_blocks" || key == "expand_ahead") {
          uint64_t n = 0;
          s = ParseUnsigned(value, key, 0, key == "expand_blocks" ? kMaxExpandPerMiss : 4096, &n);
          (key == "expand_blocks" ? expansion.per_miss : expansion.ahead) = static_cast<size_t>(n);
        } else if (key == "spill") {
          s = ParseChoice(key, value, "persist", "memory", &persist_spill);
        } else if (key == "sequential") {
          s = ParseChoice(key, value, "learn", "skip", &learn_sequential);
        } else if (key == "busy") {
          s = ParseChoice(key, value, "wait", "refuse", &wait_when_busy);
        } else if (key == "metrics") {
          metrics_address = value;
          if (value.empty()) s = Status::InvalidArgument("needs ADDR:PORT, e.g. 127.0.0.1:9464");
        } else if (key == "metrics_textfile") {
          if (value.empty()) {
            s = Status::InvalidArgument("needs a path, e.g. /var/lib/node_exporter/lsifs.prom");
          } else {
            metrics_textfile = std::filesystem::absolute(value).lexically_normal();
            // Refused now, on the terminal, rather than logged every 15 s.
            if (::access(DirName(metrics_textfile).c_str(), W_OK) != 0) {
              s = Status::FromErrno(DirName(metrics_textfile), errno)
                      .WithContext("cannot write there");
            }
          }
        } else if (key == "pidfile") {
          if (value.empty()) {
            s = Status::InvalidArgument("needs a path: pidfile=PATH");
          } else {
            // Absolute: once daemonized, the working directory is /.
            pidfile_path = std::filesystem::absolute(value).lexically_normal();
          }
        } else if (key == "hydrate") {
          s = ParseChoice(key, value, "on", "off", &hydrate);
        } else if (key == "expand_budget") {
          s = ParseByteSize(value, &expansion.session_budget);
        } else if (key == "expand_share") {
          s = ParseShare(value, &confidence.min_share);
        } else if (key == "max_threads") {
          uint64_t n = 0;
          s = ParseUnsigned(value, "max_threads", 2, 1024, &n);
          max_threads = static_cast<int>(n);
        } else if (key == "cache_size") {
          s = ParseByteSize(value, &cache_bytes);
          if (s.ok()) s = BlockCache::CheckCapacity(cache_bytes);
        } else if (key == "read_ahead_kb") {
          s = ParseUnsigned(value, "read_ahead_kb", 0, 1 << 20, &read_ahead_kb);
        } else if (key == "record") {
          s = ParseChoice(key, value, "1", "0", &record);
        } else if (key == "region_timeout") {
          s = ParseLatency(value, &region_timeout);
          if (s.ok() && region_timeout < std::chrono::milliseconds(100)) {
            s = Status::InvalidArgument("at least 100ms");
          }
        } else if (key == "session_idle") {
          s = ParseLatency(value, &session_idle);
        } else if (learning.Parse(key, value, &s)) {
          // A statistics parameter, kept in the database.
        } else if (key == "ro" || key == "rw") {
          // Always read-only.
        } else {
          fuse_opts.push_back(opt);
        }
        if (!s.ok()) return Fail("-o " + key + ": " + s.message());
      }
    } else if (!a.empty() && a[0] == '-') {
      return Fail("unknown option " + a + " (see: lsifs --help)");
    } else {
      positional.push_back(a);
    }
  }
  if (positional.size() != 2) {
    return Fail(
        "need STORE and MOUNTPOINT (usage: lsifs STORE MOUNTPOINT -e EXT [-f] [-o OPTIONS])");
  }
  if (extension.empty()) return Fail("no extension given: pass -e EXT (see: lsictl key list)");
  const bool site = !region_url.empty();
  if (!site && !(region_cert.empty() && region_key.empty() && region_ca.empty())) {
    return Fail("--cert, --key and --ca go with --region (see: lsifs --help)");
  }
  // A site's folder is made on its first mount.
  if (site && ::mkdir(positional[0].c_str(), 0700) != 0 && errno != EEXIST) {
    return Fail("site folder " + positional[0] + ": " + std::strerror(errno));
  }
  // Absolute paths: once daemonized, the working directory is /.
  char resolved[PATH_MAX];
  if (::realpath(positional[0].c_str(), resolved) == nullptr) {
    return Fail("store " + positional[0] + ": " + std::strerror(errno));
  }
  const std::string store_path = resolved;
  if (::realpath(positional[1].c_str(), resolved) == nullptr) {
    return Fail("mountpoint " + positional[1] + ": " + std::strerror(errno));
  }
  const std::string mountpoint = resolved;
  // An empty directory only: mounting over files would hide them, as
  // mount(8) users do not expect of a new filesystem.
  {
    struct stat st;
    if (::stat(mountpoint.c_str(), &st) != 0) {
      return Fail("mountpoint " + mountpoint + ": " + std::strerror(errno) +
                  (errno == ENOTCONN ? " (a dead mount: fusermount3 -u " + mountpoint + ")" : ""));
    }
    if (!S_ISDIR(st.st_mode)) return Fail("mountpoint " + mountpoint + " is not a directory");
    if (!ListFileNames(mountpoint).empty()) {
      return Fail("mountpoint " + mountpoint +
                  " is not empty: mount on an empty directory (its files would be hidden)");
    }
  }

  std::unique_ptr<Store> store;
  // A site's link to the region, what pulls from it and what sends to it
  // (made after daemonizing: they run threads).
  std::unique_ptr<RegionClient> region;
  std::unique_ptr<SiteSync> sync;
  std::unique_ptr<SessionUploader> uploader;
  Status s;
  if (site) {
    RegionClientOptions ro;
    ro.url = region_url;
    ro.cert_path = region_cert;
    ro.key_path = region_key;
    ro.ca_path = region_ca;
    // A demand read waits at most about three times this for a region that
    // is gone or hung (then EIO), and is served again when it returns.
    ro.request_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(region_timeout);
    ro.connect_timeout = std::min(ro.connect_timeout, ro.request_timeout);
    ro.attempts = 3;
    ro.log = LogLine;
    s = OpenSiteClient(ro, store_path, extension, &region);
    if (!s.ok()) return Fail(s.message());
    if (PathExists(store_path + "/config")) {
      // The region need not be up: what was pulled is served meanwhile.
      s = Store::Open(store_path, &store);
      if (s.ok() && PathExists(store->provider_key_path())) {
        s = Status::Exists(store_path +
                           " holds a provider key: it is a region's store, not a site");
      }
    } else {
      s = OpenOrInitSite(*region, store_path, &store);
      // Its pooled connection must not cross the fork below.
      if (s.ok()) s = OpenSiteClient(ro, store_path, extension, &region);
    }
    if (!s.ok()) return Fail(s.message());
  } else {
    s = Store::Open(store_path, &store);
    if (!s.ok()) return Fail(s.message());
  }
  ExtensionKeys keys;
  s = store->keyring().LoadKeys(extension, &keys);
  if (!s.ok()) {
    return Fail(site ? s.message() + " (copy the region's STORE/keys/" + extension + ".key to " +
                           store_path + "/keys/, mode 0600)"
                     : s.message());
  }
  // The provider key: on one host only. A site never holds one.
  std::unique_ptr<OriginKeys> origin_keys;
  if (!site) {
    SecretKey provider;
    s = store->LoadProviderKey(&provider);
    if (!s.ok()) return Fail(s.message());
    origin_keys = std::make_unique<OriginKeys>(OriginKeys::Derive(provider));
    provider.Wipe();
  }

  std::unique_ptr<Catalog> catalog;
  s = Catalog::Open(*store, &catalog);
  if (!s.ok()) return Fail(s.message());

  // One link for the demand reads and the assemblies of this daemon. Base
  // blocks come from the store, or at a site from the region.
  std::unique_ptr<Origin> base_origin;
  if (site) {
    base_origin = std::make_unique<RemoteOrigin>(*region, keys, store.get());
  } else {
    base_origin = std::make_unique<LocalOrigin>(*store, *origin_keys);
  }
  LinkOptions link_options;
  link_options.profile = wan;
  link_options.low_share = low_share;
  OriginLink link(*base_origin, link_options);
  // A read waiting on the origin holds a worker for a round trip: with a
  // latency, enough workers for every request the kernel keeps in flight
  // (max_background, 64) and the synchronous ones beside them.
  if (max_threads == 0) max_threads = wan.latency.count() > 0 ? 80 : 16;

  // The daemon that holds the database answers the control socket; a
  // second mount of the store defers to it. Asked before daemonizing, so
  // that the answer reaches the terminal.
  const std::string socket_path = store->control_socket_path();
  auto holder = [&]() -> std::string {
    std::string reply;
    bool reached = false;
    Status pinged = ControlCall(socket_path, {"ping"}, &reply, std::chrono::seconds(5), &reached);
    // "pid N holds_db 1": a daemon recording into the database.
    size_t at = reply.find(" holds_db 1");
    return pinged.ok() && at != std::string::npos ? reply.substr(0, at) : "";
  };
  std::string deferred_to = record ? holder() : "";
  if (!deferred_to.empty()) {
    std::fprintf(stderr,
                 "lsifs: another lsifs (%s) holds this store's database and control socket: this "
                 "mount's recorded sessions and assembly requests go to it\n",
                 deferred_to.c_str());
  }

  g_stderr_is_journal = g_foreground && StderrIsJournal();
  openlog("lsifs", LOG_PID, LOG_DAEMON);
  // Made after daemonizing: a fork keeps neither threads nor LevelDB's lock.
  std::unique_ptr<AccessRecorder> recorder;

  FsOptions options;
  options.session_idle = std::chrono::duration_cast<std::chrono::milliseconds>(session_idle);
  std::unique_ptr<BlockCache> cache;
  s = BlockCache::Make(cache_bytes, store->block_size(), &cache);
  if (!s.ok()) return Fail("-o cache_size: " + s.message());
  options.image.cache = cache.get();
  WaitHistogram origin_waits;
  options.image.origin_waits = &origin_waits;
  // The queue is made after the mount's tree; its figures join once it is.
  std::atomic<const AssemblyQueue*> queue_for_metrics{nullptr};
  options.daemon_metrics = [&](MountMetrics* m) {
    m->mountpoint = mountpoint;
    if (site) {
      m->region = region_url;
      const RegionClientStats r = region->Stats();
      m->site.region_requests = r.requests;
      m->site.region_retries = r.retries;
      m->site.region_failures = r.failures;
      m->site.region_outages = r.outages;
      m->site.region_reachable = r.reachable ? 1 : 0;
      if (sync) {
        const SiteSyncCounters c = sync->Counters();
        m->site.manifests_pulled = c.manifests;
        m->site.layers_pulled = c.layers;
        m->site.layer_bytes_pulled = c.layer_bytes;
        m->site.pull_failures = c.failures;
        m->site.lsis_evicted = c.evicted;
      }
      if (uploader) {
        m->site.sessions_sent = uploader->sent();
        m->site.upload_failures = uploader->failures();
      }
    }
    m->link = link.Stats();
    if (const AssemblyQueue* q = queue_for_metrics.load()) {
      for (const auto& a : q->List()) ++(a.running ? m->assemblies_running : m->assemblies_queued);
      const AssemblyQueue::Finished f = q->Totals();
      m->assemblies_done = f.done;
      m->assemblies_failed = f.failed;
      m->assemblies_cancelled = f.cancelled;
    }
  };
  options.log = LogLine;
  options.origin_description =
      (site ? "region " + region_url : std::string("local store")) + " (" + link.Describe() + ")";
  options.image.layers_arrive_later = site;
  // Expansion's background fetches travel in their own class on the link.
  std::atomic<LinkClass> expansion_class{LinkClass::kExpansion};
  std::unique_ptr<Origin> expansion_origin = link.As(&expansion_class);
  expansion.origin = expansion_origin.get();
  options.image.expansion = expansion;
  std::atomic<LinkClass> hydration_class{LinkClass::kHydration};
  std::unique_ptr<Origin> hydration_origin = link.As(&hydration_class);
  options.image.hydrate = hydrate;
  options.image.persist_spill = persist_spill;
  options.image.hydrate_origin = hydration_origin.get();
  constexpr size_t kMaxSuccessors = 1 << 20;  // per table: 8 MiB at most
  SuccessorCache successors(confidence, kMaxSuccessors);
  if (expansion.enabled) {
    options.successors = [&successors](const std::string& ext, const std::string& vol) {
      return successors.Get(ext, vol);
    };
  }
  LsiFs fs(*catalog, link, std::move(keys), options);

  std::string fsname = "fsname=lsifs:" + store_path;
  std::string opts = "ro,default_permissions,subtype=lsifs," + fsname;
  for (const auto& o : fuse_opts) opts += "," + o;
  std::vector<std::string> fargs_s = {"lsifs", "-o", opts};
  std::vector<char*> fargv;
  for (auto& x : fargs_s) fargv.push_back(x.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(fargv.size()), fargv.data());

  fuse_session* se = fuse_session_new(&args, &LsiFs::Ops(), sizeof(fuse_lowlevel_ops), &fs);
  if (se == nullptr) {
    fuse_opt_free_args(&args);
    return Fail("cannot start FUSE (bad -o option?)");
  }
  s = InstallStopSignals();
  if (!s.ok()) {
    fuse_session_destroy(se);
    fuse_opt_free_args(&args);
    return Fail("cannot install signal handlers: " + s.message());
  }
  // Refused before mounting, on the terminal.
  PidFile pidfile;
  if (!pidfile_path.empty()) {
    s = pidfile.Prepare(pidfile_path);
    if (!s.ok()) {
      fuse_session_destroy(se);
      fuse_opt_free_args(&args);
      return Fail("-o pidfile=" + pidfile_path + ": " + s.message());
    }
  }
  std::unique_ptr<MetricsServer> metrics_server;
  if (!metrics_address.empty()) {
    s = MetricsServer::Listen(metrics_address, &metrics_server);
    if (!s.ok()) {
      fuse_session_destroy(se);
      fuse_opt_free_args(&args);
      return Fail("-o metrics=" + metrics_address + ": " + s.message());
    }
  }
  if (fuse_session_mount(se, mountpoint.c_str()) != 0) {
    fuse_session_destroy(se);
    fuse_opt_free_args(&args);
    return Fail("cannot mount on " + mountpoint + " (does it exist? is /dev/fuse there?)");
  }
  if (!g_foreground) s = Daemonize();
  // The pid is final now. A service manager waiting for the file would wait
  // forever for one that cannot be written: that stops the daemon.
  if (s.ok()) s = pidfile.Publish().WithContext("-o pidfile=" + pidfile_path);
  if (!s.ok()) {
    ReportReady(s.message());
    fuse_session_unmount(se);
    fuse_session_destroy(se);
    fuse_opt_free_args(&args);
    return 1;
  }
  LogLine("serving extension '" + extension + "' from " +
          (site ? "region " + region_url + " (site folder " + store_path + ")" : store_path) +
          " on " + mountpoint);
  // lsictl reaches the database held here, and this mount's origin link,
  // through the control socket.
  ServiceEnv env;
  env.store = store.get();
  env.keys = origin_keys.get();
  env.link = &link;
  env.catalog = catalog.get();
  env.preassemble = preassemble && !site;
  // A site cannot read snapshot maps: whole-image reads are told apart at
  // the region, where its sessions are learned from.
  const SessionPolicy session_policy =
      site ? SessionPolicy() : MakeSessionPolicy(*store, *origin_keys, learn_sequential);
  env.with_db = [&](const std::function<Status(AccessDb*)>& fn) -> Status {
    if (recorder->holds_db()) return recorder->WithDb([&](AccessDb& adb) { return fn(&adb); });
    // Not recording: the database is not held here; open it for the request,
    // one request at a time (LevelDB's lock is per process and per open).
    static std::mutex one_at_a_time;
    std::lock_guard<std::mutex> lock(one_at_a_time);
    std::unique_ptr<AccessDb> adb;
    Status opened = AccessDb::Open(store->db_dir(), CoAccessSettings(), &adb, session_policy);
    return fn(opened.ok() ? adb.get() : nullptr);
  };
  AssemblyQueue::Options queue_options;
  queue_options.log = LogLine;
  AssemblyQueue queue(MakeAssemblyWork(env), queue_options);
  queue_for_metrics = &queue;
  env.queue = &queue;

  // Recording never stops the mount: without the database, reads still work.
  RecorderOptions recorder_options;
  recorder_options.log = LogLine;
  // A session ended (here, or forwarded by a second mount): the models of
  // its volume changed.
  // A site sends its ended sessions to the region, which learns from them.
  env.on_session_end = [&](AccessDb& adb, const std::string& volume) {
    // A site's tables are the region's, refreshed once the session is sent.
    if (!site) successors.Build(adb, volume);
    if (env.preassemble) QueuePreassemblies(env, adb, volume, "session end");
    if (uploader) uploader->Wake();
  };
  recorder_options.on_session_end = [&](AccessDb& adb, const std::string&,
                                        const std::string& volume) {
    env.on_session_end(adb, volume);
  };
  std::unique_ptr<AccessDb> db;
  if (record && deferred_to.empty()) {
    s = AccessDb::Open(store->db_dir(), learning, &db, session_policy);
    if (!s.ok()) {
      // Another mount may have taken it since we asked: then defer to it.
      for (int i = 0; i < 20 && deferred_to.empty(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        deferred_to = holder();
      }
      if (deferred_to.empty()) LogLine("access recording off: " + s.message());
      db.reset();
    }
  }
  if (!deferred_to.empty()) {
    LogLine("deferring to the lsifs that holds the database (" + deferred_to +
            "): sessions are forwarded to it");
    recorder = std::make_unique<AccessRecorder>(MakeForwardingSink(socket_path), recorder_options);
  } else {
    recorder = std::make_unique<AccessRecorder>(std::move(db), recorder_options);
  }
  fs.SetRecorder(recorder.get());
  if (site && recorder->holds_db()) {
    uploader = std::make_unique<SessionUploader>(
        *region, extension,
        [&](const std::function<Status(AccessDb&)>& fn) { return recorder->WithDb(fn); }, LogLine);
    uploader->Start(std::chrono::seconds(30));
  }
  // One lsifs pulls into a site folder: the one that records (or, when none
  // does, each), so that two mounts of it never fetch a layer twice.
  ExtensionKeys sync_keys;
  std::string puller;
  if (site && !recorder->holds_db()) puller = holder();
  if (!puller.empty()) {
    LogLine("the lsifs that holds this site folder's database (" + puller +
            ") pulls what the region delivers");
  } else if (site && store->keyring().LoadKeys(extension, &sync_keys).ok()) {
    SiteSyncOptions sync_options;
    sync_options.log = LogLine;
    sync = std::make_unique<SiteSync>(*store, *catalog, *region, sync_keys, sync_options);
  }
  std::unique_ptr<ControlServer> control;
  if (deferred_to.empty()) {
    s = ControlServer::Start(
        socket_path,
        [&](const std::vector<std::string>& request, const ControlServer::Progress& progress,
            std::string* body) {
          if (!request.empty() && request[0] == "ping") {
            *body = "pid " + std::to_string(::getpid()) + " holds_db " +
                    (recorder->holds_db() ? "1" : "0");
            return Status::Ok();
          }
          // lsictl key rotate: the keys of an extension changed.
          if (request.size() == 2 && request[0] == "keys-changed") {
            if (request[1] != fs.extension()) {
              *body = "not served here";
              return Status::Ok();
            }
            *body = "keys read again";
            Status reloaded = fs.ReloadKeys();
            if (reloaded.IsNotFound()) {
              // lsictl key delete: what is open keeps serving, nothing else opens.
              LogLine("the key of '" + fs.extension() +
                      "' was deleted: open images keep serving; nothing else opens");
              *body = "key deleted";
              return Status::Ok();
            }
            return reloaded;
          }
          // lsictl --region restore: what the region delivered is pulled now.
          if (request.size() == 1 && request[0] == "site-pull" && sync) {
            sync->Wake();
            *body = "pulling";
            return Status::Ok();
          }
          if (site) {
            // No store to serve from here: restores, listings and learning
            // are the region's.
            return Status::Unavailable("this mount is a site of " + region_url +
                                       ": ask the region's lsid");
          }
          ServiceEnv for_request = env;
          for_request.progress = progress;
          return ServeRequest(for_request, request, body);
        },
        &control, /*take_over=*/recorder->holds_db());
    if (!s.ok()) LogLine("control socket unavailable: " + s.message());
  }
  // Successor tables asked for by new sessions are built off the read path:
  // from the database held here, or at a site fetched from the region, again
  // once sessions were sent to it and every minute (other sites teach it too).
  std::atomic<bool> building_stop{false};
  std::thread builder([&] {
    const SuccessorCache::Source from_region = [&](const std::string&, const std::string& volume,
                                                   SuccessorTable* out) {
      return FetchSuccessorTable(*region, volume, kMaxSuccessors, out);
    };
    auto next_try = std::chrono::steady_clock::now();
    auto next_refresh = next_try + std::chrono::minutes(1);
    uint64_t sent_seen = 0;
    while (!building_stop) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      const auto now = std::chrono::steady_clock::now();
      if (now < next_try) continue;
      const uint64_t sent = uploader ? uploader->sent() : 0;
      const bool refresh = site && (sent != sent_seen || now >= next_refresh);
      if (!refresh && !successors.Wanted()) continue;
      if (site) {
        Status got = refresh ? successors.Refresh(from_region) : successors.Build(from_region);
        if (!got.ok()) {
          next_try = now + std::chrono::seconds(5);  // the region down: reads go on without
        } else if (refresh) {
          sent_seen = sent;
          next_refresh = now + std::chrono::minutes(1);
        }
        continue;
      }
      bool built = false;
      (void)env.with_db([&](AccessDb* adb) {
        if (adb != nullptr) successors.Build(*adb);
        built = adb != nullptr;
        return Status::Ok();
      });
      // Another process holds the database: no expansion here; ask again later.
      if (!built) next_try = now + std::chrono::seconds(30);
    }
  });
  auto prometheus = [&fs] {
    MountMetrics m;
    fs.Metrics(&m);
    return RenderPrometheus(m);
  };
  if (metrics_server) {
    Status served = metrics_server->Serve(prometheus);
    LogLine(served.ok() ? "metrics at http://" + metrics_server->endpoint() + "/metrics"
                        : "-o metrics: " + served.message() + "; no metrics are served");
  }
  // node-exporter's textfile collector reads *.prom files whole: each is
  // written beside PATH and renamed over it.
  std::mutex textfile_mu;
  std::condition_variable textfile_cv;
  bool textfile_stop = false;
  auto write_textfile = [&] {
    Status w = WriteFileAtomically(DirName(metrics_textfile), metrics_textfile,
                                   AsBytes(prometheus()), 0644, /*replace=*/true);
    if (!w.ok()) LogLine("-o metrics_textfile: " + w.message());
  };
  std::thread textfile_writer([&] {
    if (metrics_textfile.empty()) return;
    std::unique_lock<std::mutex> lock(textfile_mu);
    do {
      lock.unlock();
      write_textfile();
      lock.lock();
    } while (!textfile_cv.wait_for(lock, std::chrono::seconds(15), [&] { return textfile_stop; }));
  });
  // Ready: the mount is in place (requests wait in the kernel until the loop
  // below takes them), the pid file written, the control socket up.
  ReportReady("");
  Notify("READY=1\nSTATUS=serving extension '" + extension + "' from " + store_path);
  // A site pulls what the region delivers, below demand reads on its link.
  if (sync) sync->Start(std::chrono::seconds(5));
  fs.StartBackground(se);

  std::thread tune([&] { SetReadAhead(mountpoint, read_ahead_kb); });

  // A stop signal ends the loop only when no image is open, as umount(8)
  // refuses a busy filesystem: the ext4 on a loop device above an image
  // would otherwise fail with I/O errors.
  std::thread stopper([&] {
    bool waiting = false;
    for (;;) {
      pollfd p{g_stop_pipe[0], POLLIN, 0};
      unsigned char sig = 0;
      if (::poll(&p, 1, 250) > 0 && ::read(g_stop_pipe[0], &sig, 1) != 1) sig = 0;
      if (sig == kEndStopper) return;
      if (fuse_session_exited(se)) {
        // Unmounted (fusermount3 -u): the loop waits for its workers, and a
        // worker may be waiting on the origin for as long as a round trip
        // of the WAN model. Those waits give up now.
        link.Stop();
        if (region) region->Stop();
        return;
      }
      if (sig == 0 && !waiting) continue;
      std::vector<std::string> open;
      bool idle = fs.StopIfIdle(&open);
      // A close just made may still be on its way (FUSE sends releases in
      // the background): give it a moment before calling the mount busy.
      for (int i = 0; sig != 0 && !idle && i < 20; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        idle = fs.StopIfIdle(&open);
      }
      if (idle) {
        LogLine(sig != 0 ? std::string("stopping on SIG") + ::sigabbrev_np(sig)
                         : std::string("the last open image was closed: stopping"));
        Notify("STOPPING=1");
        link.Stop();  // nothing reads any more: background waits end now
        if (region) region->Stop();
        fuse_session_exit(se);
        // The loop notices the exit at its next request: make one.
        static std::atomic<int> poke{0};
        struct stat st;
        (void)::stat((mountpoint + "/.lsifs/.stop-" + std::to_string(++poke)).c_str(), &st);
        return;
      }
      if (sig == 0) continue;
      std::string names;
      for (const auto& n : open) names += (names.empty() ? "" : ", ") + n;
      std::string holders = DescribeHolders(mountpoint);
      std::string busy = "busy: " + names + " open" +
                         (holders.empty() ? std::string() : " (held by " + holders + ")");
      if (wait_when_busy) {
        if (!waiting) {
          LogLine(std::string("SIG") + ::sigabbrev_np(sig) + ": " + busy +
                  "; stopping when the last one is closed (busy=wait)");
          // systemctl status shows why a stop takes its time.
          Notify("STATUS=stopping when the last open image is closed: " + busy);
        }
        waiting = true;
      } else {
        LogLine(std::string("not stopping on SIG") + ::sigabbrev_np(sig) + ": " + busy +
                "; close or detach it (losetup -d, umount), then stop again, or mount with "
                "-o busy=wait");
        Notify("STATUS=serving; not stopped on SIG" + std::string(::sigabbrev_np(sig)) + ": " +
               busy);
      }
    }
  });

  fuse_loop_config* config = fuse_loop_cfg_create();
  fuse_loop_cfg_set_max_threads(config, static_cast<unsigned>(max_threads));
  fuse_loop_cfg_set_clone_fd(config, 1);
  int rc = fuse_session_loop_mt(se, config);
  fuse_loop_cfg_destroy(config);
  Notify("STOPPING=1");  // also after an unmount (fusermount3 -u)
  OnStopSignal(kEndStopper);
  stopper.join();

  // Waits on the origin (background fetches of images being released,
  // assemblies, a site's pulls) give up now, before anything waits for them.
  link.Stop();
  if (region) region->Stop();
  fs.StopBackground();
  fs.EndAllSessions();
  fs.SaveCounters();
  {
    std::lock_guard<std::mutex> lock(textfile_mu);
    textfile_stop = true;
  }
  textfile_cv.notify_all();
  textfile_writer.join();
  // A stopped mount exports nothing: node-exporter must not go on showing
  // its last figures.
  if (!metrics_textfile.empty()) ::unlink(metrics_textfile.c_str());
  metrics_server.reset();
  queue.Stop();
  control.reset();
  building_stop = true;
  builder.join();
  // Sessions not sent yet (those ended at this stop among them) wait in the
  // site's database for the next mount: a stop never waits on the region.
  sync.reset();
  uploader.reset();
  recorder.reset();  // ends what is left while the queue can still be told
  fuse_session_unmount(se);
  fuse_session_destroy(se);
  fuse_opt_free_args(&args);
  // After the device is closed: a stat still waiting on this mount fails.
  tune.join();
  LogLine("unmounted " + mountpoint);
  pidfile.Remove();
  // The loop returns the number of the signal that ended it (a clean stop) or
  // a negative errno.
  return rc >= 0 ? 0 : 1;
}
