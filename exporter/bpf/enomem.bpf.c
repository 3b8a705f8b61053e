// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/* enomem.bpf.c: ENOMEM from mmap, munmap, mprotect, mremap, brk and shmat, counted
 * as it happens, with its cause judged in the kernel at the moment of failure.
 *
 * Programs on the syscall trace events (their layouts:
 * /sys/kernel/tracing/events/syscalls/sys_{enter,exit}_<name>/format): each
 * sys_enter_* remembers the call's length and flags per thread, each
 * sys_exit_* looks at the result. A failure is
 *   - mmap, munmap, mprotect, mremap, shmat: a return of -ENOMEM;
 *   - brk: no error code at all: brk() returns the old break when it cannot move
 *     it, so a failure is a requested break above the old one that came back
 *     different.
 * The cause, from the failing process's own mm_struct and signal_struct->rlim[]
 * as the kernel saw them, in the order the kernel checks them:
 *   map_count    mm->map_count at vm.max_map_count (mremap: within 3 of it, as
 *                mremap reserves room for splitting); munmap, mprotect and
 *                MAP_FIXED mmap must split an area, and splitting needs one more
 *   rlimit_as    total_vm plus the request above RLIMIT_AS (may_expand_vm())
 *   rlimit_data  a private writable request with data_vm above RLIMIT_DATA
 *                (may_expand_vm(); brk: check_data_rlimit())
 *   memory       none of these: the kernel could not allocate or commit memory
 *                (overcommit refused, or, for mprotect/mremap, an unmapped range)
 * shmat's length is the segment's, which its arguments do not carry: a finite
 * RLIMIT_AS is blamed when the map count is not at the limit.
 *
 * Counts are kept per process (key: tgid and the leader's start_boottime, so a
 * reused pid starts afresh) in a bounded hash map that user space reads and
 * prunes (exporter/bpf/enomem.py), and per node in .bss, never reset. What does
 * not fit is counted in totals.overflow, never dropped silently.
 * vm.max_map_count has no BTF variable or kallsyms entry to read it from on
 * kernels built without CONFIG_KALLSYMS_ALL, so user space writes it into
 * limits.max_map_count (section .data.limits) at start and at every read.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include "records.h"

char LICENSE[] SEC("license") = "GPL";

#define ENOMEM 12
#define RLIM_INFINITY (~0ULL)
/* include/uapi/asm-generic/mman-common.h (x86 and arm64 use these values) */
#define PROT_WRITE 0x2
#define MAP_TYPE 0x0f
#define MAP_PRIVATE 0x02
#define MAP_GROWSDOWN 0x0100

struct enomem_config {
	__u32 page_shift;
	__u32 rlimit_data_index;
	__u32 rlimit_as_index;
	__u32 pad;
};

const volatile struct enomem_config enomem_config SEC(".rodata.config") = {
	.page_shift = 12,
	.rlimit_data_index = 2,
	.rlimit_as_index = 9,
};

struct enomem_limits {
	__u32 max_map_count; /* vm.max_map_count; 0 until user space writes it */
	__u32 pad;
};

struct enomem_limits limits SEC(".data.limits") = {};

struct enomem_totals {
	__u64 node[NR_SYSCALLS][NR_CAUSES];
	__u64 overflow[NR_OVERFLOWS];
};

struct enomem_totals totals = {};

/* One call in flight per thread: what sys_enter saw. */
struct call {
	__u64 len;      /* bytes the call adds (mmap, mremap growth, brk growth) or touches */
	__u64 prot;     /* mmap, mprotect */
	__u64 flags;    /* mmap */
	__u64 brk;      /* brk: the requested break */
	__u64 old_brk;  /* brk: mm->brk at entry */
	__u32 syscall;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192); /* threads inside one of these calls at the same moment */
	__type(key, __u32);        /* tid */
	__type(value, struct call);
} calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096); /* processes with failures not yet pruned (enomem.py may resize) */
	__type(key, struct enomem_key);
	__type(value, struct enomem_value);
} failures SEC(".maps");

/* The syscall trace events' records (see their format files): 8 bytes of
 * common fields, the syscall number, then the arguments or the return value. */
struct sys_enter_args {
	__u64 common;
	__s32 nr;
	__u32 pad;
	__u64 args[6];
};

struct sys_exit_args {
	__u64 common;
	__s32 nr;
	__u32 pad;
	__s64 ret;
};

static __always_inline int remember(__u32 syscall, __u64 len, __u64 prot, __u64 flags, __u64 brk)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct call c = {.syscall = syscall, .len = len, .prot = prot, .flags = flags, .brk = brk};

	if (syscall == SYS_BRK) {
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();

		c.old_brk = BPF_CORE_READ(task, mm, brk);
		c.len = brk > c.old_brk ? brk - c.old_brk : 0;
	}
	if (bpf_map_update_elem(&calls, &tid, &c, BPF_ANY))
		__sync_fetch_and_add(&totals.overflow[OVF_ENTER_MAP_FULL], 1);
	return 0;
}

static __always_inline __u64 soft_limit(struct signal_struct *sig, __u32 index)
{
	__u64 base = (__u64)sig + bpf_core_field_offset(struct signal_struct, rlim);
	__u64 v = RLIM_INFINITY;

	if (index >= 16)
		return v;
	bpf_probe_read_kernel(&v, sizeof(v), (void *)(base + index * bpf_core_type_size(struct rlimit) +
						       bpf_core_field_offset(struct rlimit, rlim_cur)));
	return v;
}

static __always_inline __u32 judge(__u32 syscall, struct call *c, struct task_struct *task)
{
	struct mm_struct *mm = BPF_CORE_READ(task, mm);
	struct signal_struct *sig = BPF_CORE_READ(task, signal);
	__u32 shift = enomem_config.page_shift;
	__u64 pages = (c->len + (1ULL << shift) - 1) >> shift;
	__u64 rlim_as = soft_limit(sig, enomem_config.rlimit_as_index);
	__u64 rlim_data = soft_limit(sig, enomem_config.rlimit_data_index);
	__u64 max = limits.max_map_count;
	__u64 map_count = BPF_CORE_READ(mm, map_count);
	int at_limit = max && map_count + (syscall == SYS_MREMAP ? 3 : 0) >= max;
	int over_as = rlim_as != RLIM_INFINITY && BPF_CORE_READ(mm, total_vm) + pages > rlim_as >> shift;
	int over_data = rlim_data != RLIM_INFINITY && BPF_CORE_READ(mm, data_vm) + pages > rlim_data >> shift;

	switch (syscall) {
	case SYS_MMAP:
		if (at_limit)
			return CAUSE_MAP_COUNT;
		if (over_as)
			return CAUSE_RLIMIT_AS;
		if (over_data && (c->prot & PROT_WRITE) && (c->flags & MAP_TYPE) == MAP_PRIVATE &&
		    !(c->flags & MAP_GROWSDOWN))
			return CAUSE_RLIMIT_DATA;
		return CAUSE_MEMORY;
	case SYS_MPROTECT: /* making a private area writable is checked before the split */
		if (over_data && (c->prot & PROT_WRITE))
			return CAUSE_RLIMIT_DATA;
		return at_limit ? CAUSE_MAP_COUNT : CAUSE_MEMORY;
	case SYS_MREMAP:
		if (at_limit)
			return CAUSE_MAP_COUNT;
		if (over_as)
			return CAUSE_RLIMIT_AS;
		return over_data ? CAUSE_RLIMIT_DATA : CAUSE_MEMORY;
	case SYS_BRK:
		if (rlim_data != RLIM_INFINITY) { /* check_data_rlimit(): heap plus data segment, in bytes */
			__u64 heap = c->brk - BPF_CORE_READ(mm, start_brk);
			__u64 data = BPF_CORE_READ(mm, end_data) - BPF_CORE_READ(mm, start_data);

			if (heap + data > rlim_data)
				return CAUSE_RLIMIT_DATA;
		}
		if (at_limit)
			return CAUSE_MAP_COUNT;
		return over_as ? CAUSE_RLIMIT_AS : CAUSE_MEMORY;
	case SYS_SHMAT:
		if (at_limit)
			return CAUSE_MAP_COUNT;
		return rlim_as != RLIM_INFINITY ? CAUSE_RLIMIT_AS : CAUSE_MEMORY;
	default: /* munmap */
		return at_limit ? CAUSE_MAP_COUNT : CAUSE_MEMORY;
	}
}

static __always_inline void count(__u32 syscall, __u32 cause, struct task_struct *task)
{
	struct task_struct *leader = BPF_CORE_READ(task, group_leader);
	struct enomem_key key = {
		.tgid = bpf_get_current_pid_tgid() >> 32,
		.start_boottime_ns = BPF_CORE_READ(leader, start_boottime),
	};
	struct enomem_value *v;

	if (syscall >= NR_SYSCALLS || cause >= NR_CAUSES)
		return;
	__sync_fetch_and_add(&totals.node[syscall][cause], 1);
	v = bpf_map_lookup_elem(&failures, &key);
	if (!v) {
		struct enomem_value fresh = {};

		/* Fails with -EEXIST when another thread of the process made it
		 * meanwhile (then the lookup finds it), -E2BIG when the map is full. */
		bpf_map_update_elem(&failures, &key, &fresh, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&failures, &key);
		if (!v) {
			__sync_fetch_and_add(&totals.overflow[OVF_PROCESS_MAP_FULL], 1);
			return;
		}
	}
	bpf_probe_read_kernel_str(v->comm, sizeof(v->comm), &leader->comm);
	__sync_fetch_and_add(&v->count[syscall][cause], 1);
}

static __always_inline int on_exit(__u32 syscall, __s64 ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct call *in = bpf_map_lookup_elem(&calls, &tid);
	struct call c = {};
	int paired = 0, failed;

	if (in) {
		if (in->syscall == syscall) {
			c = *in;
			paired = 1;
		}
		bpf_map_delete_elem(&calls, &tid);
	}
	if (syscall == SYS_BRK)
		failed = paired && c.brk > c.old_brk && (__u64)ret != c.brk;
	else
		failed = ret == -ENOMEM;
	if (!failed)
		return 0;
	if (!paired)
		__sync_fetch_and_add(&totals.overflow[OVF_EXIT_UNPAIRED], 1);
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	count(syscall, judge(syscall, &c, task), task);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_mmap")
int enter_mmap(struct sys_enter_args *ctx)
{
	return remember(SYS_MMAP, ctx->args[1], ctx->args[2], ctx->args[3], 0);
}

SEC("tracepoint/syscalls/sys_enter_munmap")
int enter_munmap(struct sys_enter_args *ctx)
{
	return remember(SYS_MUNMAP, ctx->args[1], 0, 0, 0);
}

SEC("tracepoint/syscalls/sys_enter_mprotect")
int enter_mprotect(struct sys_enter_args *ctx)
{
	return remember(SYS_MPROTECT, ctx->args[1], ctx->args[2], 0, 0);
}

SEC("tracepoint/syscalls/sys_enter_mremap")
int enter_mremap(struct sys_enter_args *ctx)
{
	__u64 old_len = ctx->args[1], new_len = ctx->args[2];

	return remember(SYS_MREMAP, new_len > old_len ? new_len - old_len : 0, 0, ctx->args[3], 0);
}

SEC("tracepoint/syscalls/sys_enter_brk")
int enter_brk(struct sys_enter_args *ctx)
{
	return remember(SYS_BRK, 0, 0, 0, ctx->args[0]);
}

SEC("tracepoint/syscalls/sys_enter_shmat")
int enter_shmat(struct sys_enter_args *ctx)
{
	return remember(SYS_SHMAT, 0, 0, ctx->args[2], 0);
}

/* One exit program per syscall: each tracepoint needs its own. */
#define EXIT_PROGRAM(name, syscall)                        \
	SEC("tracepoint/syscalls/sys_exit_" #name)         \
	int exit_##name(struct sys_exit_args *ctx)         \
	{                                                  \
		return on_exit(syscall, ctx->ret);         \
	}

EXIT_PROGRAM(mmap, SYS_MMAP)
EXIT_PROGRAM(munmap, SYS_MUNMAP)
EXIT_PROGRAM(mprotect, SYS_MPROTECT)
EXIT_PROGRAM(mremap, SYS_MREMAP)
EXIT_PROGRAM(brk, SYS_BRK)
EXIT_PROGRAM(shmat, SYS_SHMAT)
