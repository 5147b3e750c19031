"""The journal directory on a small tmpfs, mounted in the soak's own mount
namespace (chaos.py runs itself under `unshare -m --propagation private`, so
the mount is gone with the soak's last process, whatever happens), and filled
up on demand: a file of zeros written until the file system says ENOSPC, kept
for the fault's window, then removed."""

import errno
import os
import subprocess
import tempfile

# The mount namespace chaos.py started in, set before it runs itself again
# under unshare -m (PID 1's namespace cannot always be read in a container).
PARENT_NS_ENV = "CHAOS_PARENT_MOUNT_NS"


def mount_namespace():
    return os.readlink("/proc/self/ns/mnt")


def in_private_mount_namespace():
    """True once chaos.py runs in a mount namespace other than the one it
    was started in."""
    parent = os.environ.get(PARENT_NS_ENV)
    return bool(parent) and parent != mount_namespace()


class JournalDisk:
    def __init__(self, path, size_bytes):
        self.path = str(path)
        self.size_bytes = size_bytes
        self.filler = None
        self.mounted = False

    def mount(self):
        if not in_private_mount_namespace():
            raise RuntimeError("the journal's tmpfs needs a private mount namespace "
                               "(chaos.py runs itself under unshare -m)")
        os.makedirs(self.path, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size_bytes},mode=0700",
                        "chaos-journal", self.path], check=True)
        self.mounted = True

    def fill(self):
        """Fills the file system; returns the bytes written."""
        fd, name = tempfile.mkstemp(prefix=".chaos-fill-", dir=self.path)
        self.filler = name
        written = 0
        block = b"\0" * 65536
        with os.fdopen(fd, "wb", buffering=0) as f:
            while True:
                try:
                    n = f.write(block)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    # The last bytes, below one block.
                    for size in (4096, 512, 1):
                        try:
                            while True:
                                written += f.write(b"\0" * size)
                        except OSError:
                            pass
                    break
                written += n
        return written

    def unfill(self):
        if self.filler:
            try:
                os.unlink(self.filler)
            except FileNotFoundError:
                pass
            self.filler = None

    def unmount(self):
        self.unfill()
        if self.mounted:
            subprocess.run(["umount", "-l", self.path], check=False)
            self.mounted = False
