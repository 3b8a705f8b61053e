// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/* tasks.bpf.c: every process's memory figures in one pass of the task iterator.
 *
 * Attached as an iter/task program (kernel/bpf/task_iter.c, Linux 5.8+), it is
 * run once per task (thread) of the reader's PID namespace and once more at the
 * end with task == NULL. It writes the records of records.h with bpf_seq_write:
 * one per process (thread-group leader with an address space), then the END
 * record. Kernel threads (PF_KTHREAD) and true zombies are skipped, as
 * the procfs source skips them.
 *
 * What is read, and what procfs prints from the same fields:
 *   task_struct->tgid, ->start_boottime   /proc/PID/stat fields 1 and 22 (in ns here)
 *   task_struct->comm                     stat field 2
 *   task_struct->real_cred->euid          status "Uid:" (2nd)
 *   signal_struct->nr_threads             status "Threads:"
 *   signal_struct->rlim[]                 limits (soft values)
 *   mm_struct->map_count                  lines of maps (the gate area [vsyscall] is no VMA)
 *   mm_struct->total_vm, ->data_vm        statm size, status VmSize / VmData
 *   mm_struct->rss_stat                   statm resident / shared, status RssFile/RssAnon/RssShmem
 *   mm_struct->hugetlb_usage              status HugetlbPages
 *   mm_struct->mm_lock_seq                (no procfs file): moves with every mmap write lock
 *
 * CO-RE (libbpf relocates every field access against the running kernel's BTF)
 * lets one object serve the layouts that moved:
 *   - rss_stat: struct mm_rss_stat { atomic_long_t count[4]; } before 6.2; since
 *     6.2 struct percpu_counter rss_stat[4], whose exact value is count plus each
 *     CPU's delta, as percpu_counter_sum() adds them; statm and status print
 *     that sum since mid-2025 (6.16, and the stable kernels it went back to),
 *     the bare count before, which lags by up to the counter batch (32 pages or
 *     more) per CPU.
 *   - mm_lock_seq: absent before 6.4 (or without CONFIG_PER_VMA_LOCK); an int
 *     bumped at each mmap_write_unlock from 6.4; a seqcount_t bumped at write
 *     lock and unlock (odd while held) since the conversion merged for 6.14.
 *   - hugetlb_usage: only with CONFIG_HUGETLB_PAGE.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include "records.h"

char LICENSE[] SEC("license") = "GPL";

#define PF_KTHREAD 0x00200000 /* include/linux/sched.h */
#define EXIT_ZOMBIE 0x00000020
#define MAX_THREAD_WALK 16    /* threads tried to find a live one of an exited leader */

/* Set by user space before load (exporter/bpf/tasks.py); read-only after. */
const volatile struct vma_tasks_config tasks_config SEC(".rodata.config") = {
	.nr_cpus = 1,
	.rlimit_data_index = 2,
	.rlimit_as_index = 9,
};

/* Where each CPU's per-CPU data lives. Kernel BTF tags no __percpu pointer here
 * and kallsyms may lack per-CPU symbols (no CONFIG_KALLSYMS_ALL), so neither
 * bpf_per_cpu_ptr() on mm->rss_stat[i].counters nor a __ksym works. A per-CPU
 * map of our own gives the offsets: its element's per-CPU cookie
 * (bpf_array->pptrs[0]) plus CPU c's offset is the address
 * bpf_map_lookup_percpu_elem() returns for c. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} cpu_probe SEC(".maps");

/* The layouts of older kernels, matched by CO-RE under the name before "___". */
struct mm_rss_stat___pre62 {
	atomic_long_t count[4];
} __attribute__((preserve_access_index));

struct mm_struct___pre62 {
	struct mm_rss_stat___pre62 rss_stat;
} __attribute__((preserve_access_index));

struct mm_struct___seq_int {
	int mm_lock_seq;
} __attribute__((preserve_access_index));

static __always_inline __u64 positive(long v)
{
	return v < 0 ? 0 : v; /* as get_mm_counter() clamps a transiently negative counter */
}

/* A pointer's numeric value as a plain number: copied out of the stack slot
 * that holds it, so that it can be added to like any scalar. */
static __always_inline __u64 address_of(const void *p)
{
	__u64 v = 0;

	bpf_probe_read_kernel(&v, sizeof(v), &p);
	return v;
}

/* The per-CPU cookie of cpu_probe's one element (percpu pointers are such
 * cookies: per_cpu_ptr() adds the CPU's offset to them). */
static __always_inline __u64 probe_cookie(void)
{
	__u64 array = address_of(&cpu_probe), cookie = 0;

	bpf_probe_read_kernel(&cookie, sizeof(cookie), (void *)(array + bpf_core_field_offset(struct bpf_array, pptrs)));
	return cookie;
}

/* CPU cpu's per-CPU offset, or -1 past the last possible CPU. */
static __always_inline long cpu_offset(__u32 cpu, __u64 cookie)
{
	__u32 zero = 0;
	void *copy = bpf_map_lookup_percpu_elem(&cpu_probe, &zero, cpu);

	if (!copy)
		return -1;
	return (long)(address_of(copy) - cookie);
}

/* Room for all of mm->rss_stat (4 struct percpu_counter: 160 bytes here; more
 * with lock debugging, which then takes the field-by-field path). */
#define RSS_STAT_BYTES 256

/* A scratch buffer per CPU: mm->rss_stat is copied in with one probe read
 * instead of eight, and it would not fit on the BPF stack beside a record. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u8[RSS_STAT_BYTES]);
} rss_copy SEC(".maps");

/* cpu_probe's per-CPU cookie: fixed for the map's life, found at the first task. */
__u64 cookie_found = 0;

struct rss_sum {
	__u64 counters[4]; /* rss_stat[i].counters: per-CPU cookies of s32 deltas */
	long sum[4];
	__u64 cookie;      /* cpu_probe's, to find each CPU's offset */
	__u32 adjacent;    /* the four s32 deltas of a CPU lie side by side (6.6+) */
};

/* bpf_loop() callback: add CPU cpu's deltas, as percpu_counter_sum() does.
 * No per-iteration counter in *s: the verifier checks a callback until its
 * states converge, and an exact counter would never converge. */
static long add_cpu(__u64 cpu, struct rss_sum *s)
{
	long off = cpu_offset(cpu, s->cookie);

	if (off == -1)
		return 1; /* past nr_cpu_ids: stop */
	if (s->adjacent) {
		/* percpu_counter_init_many() (6.6+) allocates an mm's four counters as
		 * one per-CPU array of s32: one read gives a CPU's four deltas */
		__s32 d[4] = {};

		bpf_probe_read_kernel(d, sizeof(d), (void *)(s->counters[0] + off));
		for (int i = 0; i < 4; i++)
			s->sum[i] += d[i];
		return 0;
	}
	for (int i = 0; i < 4; i++) {
		__s32 delta = 0;

		bpf_probe_read_kernel(&delta, sizeof(delta), (void *)(s->counters[i] + off));
		s->sum[i] += delta;
	}
	return 0;
}

/* Each rss_stat[i]'s count and counters: one probe read of the whole array into
 * rss_copy, then the fields at their CO-RE offsets; field by field where the
 * array is larger than the buffer. */
static __always_inline void read_rss_stat(struct mm_struct *mm, struct rss_sum *s)
{
	__u32 size = bpf_core_field_size(mm->rss_stat), zero = 0;
	__u32 step = bpf_core_type_size(struct percpu_counter);
	__u32 count_at = bpf_core_field_offset(struct percpu_counter, count);
	__u32 counters_at = bpf_core_field_offset(struct percpu_counter, counters);
	__u8 *copy = bpf_map_lookup_elem(&rss_copy, &zero);

	/* every offset is a constant once libbpf has relocated it: the verifier checks them */
	/* size == 4 * step: the array's elements are the size of struct percpu_counter, whose
	 * layout step and the offsets describe; a kernel with another element type is read by
	 * the field-by-field path below, relocated against its own fields (or refused at load) */
	if (copy && size == 4 * step && size <= RSS_STAT_BYTES && step * 3 + counters_at + 8 <= RSS_STAT_BYTES &&
	    step * 3 + count_at + 8 <= RSS_STAT_BYTES && !bpf_probe_read_kernel(copy, size, &mm->rss_stat)) {
		for (int i = 0; i < 4; i++) {
			s->sum[i] = *(long *)(copy + step * i + count_at);
			s->counters[i] = *(__u64 *)(copy + step * i + counters_at);
		}
		return;
	}
	s->sum[0] = BPF_CORE_READ(mm, rss_stat[0].count);
	s->sum[1] = BPF_CORE_READ(mm, rss_stat[1].count);
	s->sum[2] = BPF_CORE_READ(mm, rss_stat[2].count);
	s->sum[3] = BPF_CORE_READ(mm, rss_stat[3].count);
	s->counters[0] = (__u64)BPF_CORE_READ(mm, rss_stat[0].counters);
	s->counters[1] = (__u64)BPF_CORE_READ(mm, rss_stat[1].counters);
	s->counters[2] = (__u64)BPF_CORE_READ(mm, rss_stat[2].counters);
	s->counters[3] = (__u64)BPF_CORE_READ(mm, rss_stat[3].counters);
}

/* The four RSS counters (MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES).
 * Indexes are literal so that each access gets its own CO-RE relocation. */
static __always_inline __u32 read_rss(struct mm_struct *mm, __u64 rss[4], __u32 *features)
{
	if (bpf_core_field_exists(mm->rss_stat)) {
		/* 6.2+: bpf_loop() (5.17+) keeps the verifier's work independent of the CPU count */
		struct rss_sum s = {};
		long loops = 0, summed;

		if (!cookie_found)
			cookie_found = probe_cookie();
		s.cookie = cookie_found;
		read_rss_stat(mm, &s);
		s.adjacent = s.counters[1] == s.counters[0] + 4 && s.counters[2] == s.counters[0] + 8 &&
			     s.counters[3] == s.counters[0] + 12;
		if (s.cookie)
			loops = bpf_loop(tasks_config.nr_cpus, add_cpu, &s, 0);
		/* it counts the iteration that stopped at a CPU past nr_cpu_ids */
		summed = loops < 0 ? 0 : loops < tasks_config.nr_cpus ? loops - 1 : loops;
		*features |= summed > 0 ? VMA_FEAT_RSS_PERCPU : VMA_FEAT_RSS_APPROX;
		for (int i = 0; i < 4; i++)
			rss[i] = positive(s.sum[i]);
		return summed > 0 ? summed : 0;
	}
	if (bpf_core_field_exists(((struct mm_struct___pre62 *)mm)->rss_stat)) {
		struct mm_struct___pre62 *old = (void *)mm;

		rss[0] = positive(BPF_CORE_READ(old, rss_stat.count[0].counter));
		rss[1] = positive(BPF_CORE_READ(old, rss_stat.count[1].counter));
		rss[2] = positive(BPF_CORE_READ(old, rss_stat.count[2].counter));
		rss[3] = positive(BPF_CORE_READ(old, rss_stat.count[3].counter));
		*features |= VMA_FEAT_RSS_ATOMIC;
	}
	return 0;
}

static __always_inline __u32 read_mm_seq(struct mm_struct *mm, __u32 *features)
{
	if (bpf_core_field_exists(mm->mm_lock_seq)) {
		*features |= VMA_FEAT_SEQ_COUNT;
		return BPF_CORE_READ(mm, mm_lock_seq.sequence);
	}
	if (bpf_core_field_exists(((struct mm_struct___seq_int *)mm)->mm_lock_seq)) {
		*features |= VMA_FEAT_SEQ_INT;
		return BPF_CORE_READ((struct mm_struct___seq_int *)mm, mm_lock_seq);
	}
	return 0;
}

/* signal_struct->rlim[index].rlim_cur; the index is the architecture's RLIMIT_* number. */
static __always_inline __u64 soft_limit(struct signal_struct *sig, __u32 index)
{
	__u64 base = (__u64)sig + bpf_core_field_offset(struct signal_struct, rlim);
	__u64 v = 0;

	if (index >= 16) /* RLIM_NLIMITS */
		return 0;
	bpf_probe_read_kernel(&v, sizeof(v), (void *)(base + index * bpf_core_type_size(struct rlimit) +
						       bpf_core_field_offset(struct rlimit, rlim_cur)));
	return v;
}

/* An exited leader's process lives on in its other threads, which share one mm:
 * walk signal_struct->thread_head (linked through task_struct->thread_node) to
 * the first thread that still has it. */
static __always_inline struct mm_struct *live_thread_mm(struct task_struct *leader, __u32 *tid)
{
	__u64 node_off = bpf_core_field_offset(struct task_struct, thread_node);
	__u64 head = (__u64)BPF_CORE_READ(leader, signal) + bpf_core_field_offset(struct signal_struct, thread_head);
	__u64 start = (__u64)leader + node_off;
	__u64 node = (__u64)BPF_CORE_READ(leader, thread_node.next);

	for (int i = 0; i < MAX_THREAD_WALK; i++) {
		struct task_struct *t;
		struct mm_struct *mm;

		if (node == head) { /* the list's head is no task: step over it */
			bpf_probe_read_kernel(&node, sizeof(node), (void *)head);
			continue;
		}
		if (node == start || !node)
			break;
		t = (struct task_struct *)(node - node_off);
		mm = BPF_CORE_READ(t, mm);
		if (mm) {
			*tid = BPF_CORE_READ(t, pid);
			return mm;
		}
		node = (__u64)BPF_CORE_READ(t, thread_node.next);
	}
	return NULL;
}

static __always_inline void write_end(struct seq_file *seq)
{
	struct vma_rec_end e = {
		.kind = VMA_REC_END,
		.version = VMA_RECORDS_VERSION,
		.end_size = sizeof(struct vma_rec_end),
		.process_size = sizeof(struct vma_rec_process),
	};
	struct task_struct *reader = (struct task_struct *)bpf_get_current_task();
	struct mm_struct *mm = BPF_CORE_READ(reader, mm);
	__u64 rss[4];

	e.reader_tgid = bpf_get_current_pid_tgid() >> 32;
	e.reader_pidns_level = BPF_CORE_READ(reader, thread_pid, level);
	/* The reader's own mm tells which layouts this kernel has. */
	e.cpus_summed = read_rss(mm, rss, &e.features);
	read_mm_seq(mm, &e.features);
	if (bpf_core_field_exists(mm->hugetlb_usage))
		e.features |= VMA_FEAT_HUGETLB;
	bpf_seq_write(seq, &e, sizeof(e));
}

SEC("iter/task")
int vma_tasks(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;
	struct vma_rec_process r = {};
	struct signal_struct *sig;
	struct mm_struct *mm;
	__u32 features = 0;
	__u64 rss[4] = {};

	if (!task) {
		write_end(seq);
		return 0;
	}
	/* task is a trusted BTF pointer: its fields (and signal's, real_cred's) are
	 * plain loads, relocated by CO-RE; most tasks are threads that stop here */
	if (task->flags & PF_KTHREAD)
		return 0;
	r.tgid = task->tgid;
	if (task->pid != r.tgid)
		return 0; /* a thread: its process is reported at its leader */
	sig = task->signal;
	mm = task->mm;
	if (!mm) {
		if (!(task->exit_state & EXIT_ZOMBIE) || sig->live.counter <= 0)
			return 0; /* a zombie whose threads all exited: no address space left */
		mm = live_thread_mm(task, &r.via_tid);
		r.flags |= mm ? VMA_PROC_VIA_THREAD : VMA_PROC_NO_MM;
	}

	r.kind = VMA_REC_PROCESS;
	r.start_boottime_ns = task->start_boottime;
	__builtin_memcpy(r.comm, task->comm, sizeof(r.comm));
	r.threads = sig->nr_threads;
	r.euid = task->real_cred->euid.val;
	r.rlim_data = soft_limit(sig, tasks_config.rlimit_data_index);
	r.rlim_as = soft_limit(sig, tasks_config.rlimit_as_index);
	if (mm) { /* probe reads: a live thread's mm is a plain address */
		r.map_count = BPF_CORE_READ(mm, map_count);
		r.total_vm = BPF_CORE_READ(mm, total_vm);
		r.data_vm = BPF_CORE_READ(mm, data_vm);
		read_rss(mm, rss, &features);
		r.rss_file = rss[0]; /* the kernel's enum order: MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES */
		r.rss_anon = rss[1];
		r.swap_ents = rss[2];
		r.rss_shmem = rss[3];
		if (bpf_core_field_exists(mm->hugetlb_usage))
			r.hugetlb_pages = BPF_CORE_READ(mm, hugetlb_usage.counter);
		r.mm_seq = read_mm_seq(mm, &features);
	}
	bpf_seq_write(seq, &r, sizeof(r));
	return 0;
}
