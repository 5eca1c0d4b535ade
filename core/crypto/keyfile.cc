#include "core/crypto/keyfile.h"

#include <dirent.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <sstream>

#include "core/util/file.h"
#include "core/util/hex.h"
#include "core/util/names.h"
#include "core/util/numbers.h"

namespace lsifs {
namespace {

constexpr char kFormatName[] = "lsifs-key";
constexpr uint64_t kFormatVersion = 1;
constexpr size_t kMaxKeyFileSize = 4096;

const char* KindName(KeyKind kind) {
  return kind == KeyKind::kProvider ? "provider" : "extension";
}

// Wipes a std::string that held key material before it is freed.
struct WipeOnExit {
  std::string& s;
  ~WipeOnExit() { OPENSSL_cleanse(s.data(), s.size()); }
};

}  // namespace

std::string DescribeKey(const KeyInfo& info) {
  std::string s = KindName(info.kind);
  s += " key";
  if (info.kind == KeyKind::kExtension) s += " '" + info.name + "'";
  s += " (id " + FormatId(info.id) + ")";
  return s;
}

Status WriteKeyFile(const std::string& tmp_dir, const std::string& path, const KeyInfo& info,
                    const SecretKey& key) {
  std::string text = "# lsifs key file. Secret: keep it mode 0600 and never share it.\n";
  text += "format: " + std::string(kFormatName) + "-" + std::to_string(kFormatVersion);
  text += "\nkind: ";
  text += KindName(info.kind);
  text += "\nname: " + info.name + "\nid: " + FormatId(info.id) + "\nkey: ";
  text += HexEncode(key.span());
  text += "\n";
  WipeOnExit wipe{text};
  return WriteFileAtomically(tmp_dir, path, AsBytes(text), 0600, /*replace=*/false);
}

Status CheckSecretFile(const std::string& path, const std::string& what) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Status::FromErrno(path, errno);
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
    return Status::Permission(what + " " + path + " is accessible by group or others (mode " +
                              mode + "); refusing to use it. Run: chmod 600 " + path);
  }
  // As ssh's StrictModes: a key that another user could have written, or
  // replaced through its folder, is not this user's key.
  if (st.st_uid != ::geteuid() && st.st_uid != 0) {
    return Status::Permission(what + " " + path + " is owned by uid " + std::to_string(st.st_uid) +
                              ", not by this user (uid " + std::to_string(::geteuid()) +
                              "); refusing to use it. Run: chown " + std::to_string(::geteuid()) +
                              " " + path);
  }
  std::string folder = path.substr(0, path.find_last_of('/') + 1);
  if (folder.empty()) folder = ".";
  struct stat dir;
  if (::stat(folder.c_str(), &dir) == 0 && (dir.st_mode & 022) != 0 &&
      (dir.st_mode & S_ISVTX) == 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", dir.st_mode & 07777);
    return Status::Permission("the folder of " + what + " " + path +
                              " is writable by group or others (mode " + mode +
                              "): anyone could replace the key; refusing to use it. Run: chmod "
                              "go-w " +
                              folder);
  }
  return Status::Ok();
}

Status ReadKeyFile(const std::string& path, KeyInfo* info, SecretKey* key) {
  LSIFS_RETURN_IF_ERROR(CheckSecretFile(path, "key file"));
  std::string text;
  WipeOnExit wipe{text};
  LSIFS_RETURN_IF_ERROR(ReadWholeFile(path, kMaxKeyFileSize, &text));

  bool saw_format = false;
  bool saw_key = false;
  std::string kind;
  std::string id_text;
  info->path = path;
  std::istringstream in(text);
  std::string line;
  WipeOnExit wipe_line{line};
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    size_t colon = line.find(": ");
    if (colon == std::string::npos) return Status::Corruption(path + ": not an lsifs key file");
    std::string field = line.substr(0, colon);
    std::string value = line.substr(colon + 2);
    if (field == "format") {
      LSIFS_RETURN_IF_ERROR(
          CheckFormatLine(value, kFormatName, kFormatVersion, "key file " + path));
      saw_format = true;
    } else if (field == "kind") {
      kind = value;
    } else if (field == "name") {
      info->name = value;
    } else if (field == "id") {
      id_text = value;
    } else if (field == "key") {
      auto bytes = HexDecode(value);
      OPENSSL_cleanse(value.data(), value.size());
      if (!bytes || bytes->size() != kKeySize) {
        if (bytes) OPENSSL_cleanse(bytes->data(), bytes->size());
        return Status::Corruption(path + ": key is not 64 hex digits");
      }
      *key = SecretKey::FromBytes(*bytes);
      OPENSSL_cleanse(bytes->data(), bytes->size());
      saw_key = true;
    }
  }
  if (!saw_format)
    return Status::Corruption(path + ": not an lsifs key file (format line missing)");
  if (kind == "provider") {
    info->kind = KeyKind::kProvider;
  } else if (kind == "extension") {
    info->kind = KeyKind::kExtension;
  } else {
    return Status::Corruption(path + ": unknown key kind '" + kind + "'");
  }
  auto id = ParseId(id_text);
  if (!id)
    return Status::Corruption(path + ": key id is not a valid id (16 hex digits, not all zeros)");
  info->id = *id;
  if (!saw_key) return Status::Corruption(path + ": no key line");
  return Status::Ok();
}

Status Keyring::Create(const std::string& extension, KeyInfo* info) const {
  LSIFS_RETURN_IF_ERROR(ValidateName("extension", extension));
  std::string path = PathFor(extension);
  if (PathExists(path)) {
    return Status::Exists("extension '" + extension + "' already has a key (" + path + ")");
  }
  info->kind = KeyKind::kExtension;
  info->name = extension;
  info->id = RandomU64NonZero();
  info->path = path;
  SecretKey key = SecretKey::Random();
  Status s = WriteKeyFile(tmp_dir_, path, *info, key);
  if (s.code() == Status::Code::kExists) {
    return Status::Exists("extension '" + extension + "' already has a key (" + path + ")");
  }
  return s;
}

Status Keyring::Load(const std::string& extension, KeyInfo* info, SecretKey* key) const {
  LSIFS_RETURN_IF_ERROR(ValidateName("extension", extension));
  std::string path = PathFor(extension);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) {
      // Keys are readable by the store's owner only: say so, never "no key".
      return Status::FromErrno(path, errno)
          .WithContext("cannot read the key of extension '" + extension +
                       "' (run as root or as the store's owner)");
    }
    return Status::NotFound("extension '" + extension +
                            "' has no key in this store; create one with: lsictl key create " +
                            extension);
  }
  LSIFS_RETURN_IF_ERROR(ReadKeyFile(path, info, key));
  if (info->kind != KeyKind::kExtension || info->name != extension) {
    return Status::Corruption(path + ": holds the key of '" + info->name + "', not '" + extension +
                              "'");
  }
  return Status::Ok();
}

Status Keyring::LoadKeys(const std::string& extension, ExtensionKeys* keys) const {
  keys->has_next = false;
  LSIFS_RETURN_IF_ERROR(Load(extension, &keys->info, &keys->key));
  const std::string next = NextPathFor(extension);
  if (!PathExists(next)) return Status::Ok();
  LSIFS_RETURN_IF_ERROR(ReadKeyFile(next, &keys->next_info, &keys->next_key));
  if (keys->next_info.kind != KeyKind::kExtension || keys->next_info.name != extension) {
    return Status::Corruption(next + ": holds the key of '" + keys->next_info.name + "', not '" +
                              extension + "'");
  }
  keys->has_next = true;
  return Status::Ok();
}

bool Keyring::RotationPending(const std::string& extension) const {
  return PathExists(NextPathFor(extension));
}

Status Keyring::BeginRotation(const std::string& extension, KeyInfo* next_info, SecretKey* next_key,
                              bool* resumed) const {
  ExtensionKeys keys;
  LSIFS_RETURN_IF_ERROR(LoadKeys(extension, &keys));
  *resumed = keys.has_next;
  if (keys.has_next) {
    *next_info = keys.next_info;
    *next_key = std::move(keys.next_key);
    return Status::Ok();
  }
  next_info->kind = KeyKind::kExtension;
  next_info->name = extension;
  do {
    next_info->id = RandomU64NonZero();
  } while (next_info->id == keys.info.id);
  next_info->path = NextPathFor(extension);
  *next_key = SecretKey::Random();
  return WriteKeyFile(tmp_dir_, next_info->path, *next_info, *next_key);
}

Status Keyring::FinishRotation(const std::string& extension, uint64_t next_id) const {
  const std::string next = NextPathFor(extension), path = PathFor(extension);
  KeyInfo info;
  SecretKey key;
  LSIFS_RETURN_IF_ERROR(ReadKeyFile(next, &info, &key));
  if (info.id != next_id) {
    return Status::Unavailable(
        "the next key of '" + extension + "' is " + FormatId(info.id) + ", not this rotation's " +
        FormatId(next_id) + " (another rotation?); run lsictl key rotate " + extension + " again");
  }
  if (::rename(next.c_str(), path.c_str()) != 0) {
    return Status::FromErrno("rename " + next + " to " + path, errno);
  }
  return SyncDirectory(dir_);
}

Status Keyring::Remove(const std::string& extension) const {
  LSIFS_RETURN_IF_ERROR(ValidateName("extension", extension));
  for (const std::string& path :
       {NextPathFor(extension), PathFor(extension), RotationLockPathFor(extension)}) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return Status::FromErrno("removing " + path, errno);
    }
  }
  return SyncDirectory(dir_);
}

Status Keyring::List(std::vector<KeyInfo>* keys, std::vector<std::string>* unusable) const {
  keys->clear();
  if (unusable != nullptr) unusable->clear();
  DIR* d = ::opendir(dir_.c_str());
  if (d == nullptr) return Status::FromErrno(dir_, errno);
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.size() <= 4 || name.compare(name.size() - 4, 4, ".key") != 0) continue;
    KeyInfo info;
    SecretKey key;
    Status s = ReadKeyFile(dir_ + "/" + name, &info, &key);
    if (!s.ok() && unusable != nullptr) {
      unusable->push_back(s.message());
      continue;
    }
    if (!s.ok()) {
      ::closedir(d);
      return s;
    }
    keys->push_back(info);
  }
  ::closedir(d);
  std::sort(keys->begin(), keys->end(),
            [](const KeyInfo& a, const KeyInfo& b) { return a.name < b.name; });
  return Status::Ok();
}

}  // namespace lsifs
