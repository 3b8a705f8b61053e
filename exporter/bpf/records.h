/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/* The binary layouts shared by the BPF programs and their Python readers.
 *
 * tasks.bpf.c writes, through the task iterator's seq_file, a stream of fixed
 * records in host byte order: one PROCESS per process, then one END. END is
 * written by the iterator's last call (task == NULL), which the kernel makes
 * once the walk is complete: a stream without it was cut short. (It is not a
 * header: the first call cannot tell "no task yet" from "one task", as the
 * kernel's seq_num counts from the second object on.)
 * exporter/bpf/records.py parses them; its struct formats mirror these
 * definitions field for field (tests/test_bpf_records.py compiles this file to
 * check), and END carries the sizes the object was built with. Every field is
 * naturally aligned so that the C layout has no hidden padding.
 *
 * enomem.bpf.c keeps its counts in maps whose keys and values are
 * struct enomem_key / struct enomem_value (exporter/bpf/enomem.py).
 *
 * Change a layout: bump VMA_RECORDS_VERSION, update records.py, rebuild
 * (scripts/build-bpf.sh).
 */
#ifndef VMA_RECORDS_H
#define VMA_RECORDS_H

#define VMA_RECORDS_VERSION 1

enum vma_record_kind {
	VMA_REC_PROCESS = 0x56505243, /* "CRPV" in memory */
	VMA_REC_END = 0x56454e44,     /* "DNEV": the pass ran to its end */
};

/* END's feature bits: which kernel layout CO-RE found. */
#define VMA_FEAT_RSS_PERCPU   (1u << 0)  /* 6.2+: mm->rss_stat is percpu_counter[], summed over CPUs */
#define VMA_FEAT_RSS_ATOMIC   (1u << 1)  /* before 6.2: struct mm_rss_stat of atomic_long_t */
#define VMA_FEAT_SEQ_COUNT    (1u << 2)  /* 6.14+: mm->mm_lock_seq is a seqcount_t */
#define VMA_FEAT_SEQ_INT      (1u << 3)  /* 6.4-6.13: mm->mm_lock_seq is an int */
#define VMA_FEAT_HUGETLB      (1u << 4)  /* mm->hugetlb_usage exists (CONFIG_HUGETLB_PAGE) */
#define VMA_FEAT_RSS_APPROX   (1u << 5)  /* percpu counters but no per-CPU offsets: count only */

/* Process flags. */
#define VMA_PROC_VIA_THREAD   (1u << 0)  /* the leader exited: mm read through thread via_tid */
#define VMA_PROC_NO_MM        (1u << 1)  /* leader exited, no live thread's mm found: no memory figures */

struct vma_rec_process {
	__u32 kind;          /* VMA_REC_PROCESS */
	__u32 tgid;          /* task_struct->tgid: the pid of /proc/PID */
	__u64 start_boottime_ns; /* the leader's task_struct->start_boottime */
	char comm[16];       /* the leader's task_struct->comm */
	__u32 threads;       /* signal_struct->nr_threads (status "Threads:") */
	__u32 euid;          /* the leader's real_cred->euid (status "Uid:", 2nd) */
	__u32 map_count;     /* mm_struct->map_count: lines of maps less [vsyscall] */
	__u32 flags;         /* VMA_PROC_* */
	__u64 total_vm;      /* pages: VmSize, statm size */
	__u64 data_vm;       /* pages: VmData */
	__u64 rss_file;      /* pages: MM_FILEPAGES */
	__u64 rss_anon;      /* pages: MM_ANONPAGES */
	__u64 rss_shmem;     /* pages: MM_SHMEMPAGES */
	__u64 swap_ents;     /* pages: MM_SWAPENTS (VmSwap) */
	__u64 hugetlb_pages; /* base pages: mm_struct->hugetlb_usage (HugetlbPages) */
	__u64 rlim_data;     /* signal_struct->rlim[RLIMIT_DATA].rlim_cur; ~0 = unlimited */
	__u64 rlim_as;       /* signal_struct->rlim[RLIMIT_AS].rlim_cur */
	__u32 mm_seq;        /* mm_struct->mm_lock_seq; 0 where the kernel has none */
	__u32 via_tid;       /* the live thread read when VMA_PROC_VIA_THREAD */
};

struct vma_rec_end {
	__u32 kind;          /* VMA_REC_END */
	__u32 version;       /* VMA_RECORDS_VERSION */
	__u32 end_size;      /* sizeof(struct vma_rec_end) */
	__u32 process_size;  /* sizeof(struct vma_rec_process) */
	__u32 features;      /* VMA_FEAT_* */
	__u32 reader_tgid;   /* the reading process, as the root PID namespace numbers it */
	__u32 reader_pidns_level; /* 0: the reader is in the root (host) PID namespace */
	__u32 cpus_summed;   /* CPUs whose per-CPU RSS deltas were added */
};

/* tasks.bpf.c's read-only config (section .rodata.config), set before load. */
struct vma_tasks_config {
	__u32 nr_cpus;           /* possible CPUs (libbpf_num_possible_cpus) */
	__u32 rlimit_data_index; /* RLIMIT_DATA on this architecture */
	__u32 rlimit_as_index;   /* RLIMIT_AS */
	__u32 pad;
};

/* ENOMEM accounting (enomem.bpf.c). */
enum vma_syscall { SYS_MMAP, SYS_MUNMAP, SYS_MPROTECT, SYS_MREMAP, SYS_BRK, SYS_SHMAT, NR_SYSCALLS };
enum vma_cause { CAUSE_MAP_COUNT, CAUSE_RLIMIT_DATA, CAUSE_RLIMIT_AS, CAUSE_MEMORY, NR_CAUSES };

/* Diagnostics, counted in enomem.bpf.c's .bss (never reset). */
enum vma_overflow {
	OVF_PROCESS_MAP_FULL, /* a failure not attributed to its process: the per-process map was full */
	OVF_ENTER_MAP_FULL,   /* a call's arguments not remembered: the per-thread map was full */
	OVF_EXIT_UNPAIRED,    /* a failure seen without its sys_enter (attached mid-call, or map full) */
	NR_OVERFLOWS,
};

struct enomem_key {
	__u32 tgid;
	__u32 pad;
	__u64 start_boottime_ns; /* the leader's: with tgid, never reused */
};

struct enomem_value {
	__u64 count[NR_SYSCALLS][NR_CAUSES];
	char comm[16];           /* the leader's comm at the last failure */
};

#endif
