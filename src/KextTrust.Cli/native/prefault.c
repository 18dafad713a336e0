/*
 * Start-up prefault for the Native AOT build of kextrust on Linux (linked in by KextTrust.Cli.csproj).
 *
 * Before main, the .NET Native AOT runtime writes about 4.7 MB of type data into the executable's zero-initialised
 * .hydrated section (".NET rehydration"), one fresh page after another. Each first touch of a page is a separate
 * page fault; on virtual machines a fault costs several microseconds, and these ~1,150 faults were most of the
 * command's start-up (28 ms for `kextrust --version`, measured in the README's Performance section).
 *
 * This constructor runs before main. It asks the kernel to back the executable's zero-initialised memory (the
 * part of its writable PT_LOAD segment beyond the file's bytes: .bss and .hydrated) with transparent huge pages
 * where it can (MADV_HUGEPAGE) and to populate it in one call (MADV_POPULATE_WRITE, Linux 5.14+). It changes no
 * byte, no protection and no address: the executable stays position-independent and randomised. On a kernel
 * without either advice the calls fail with EINVAL and start-up proceeds exactly as without this file.
 */
#define _GNU_SOURCE
#include <link.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static int kextrust_prefault_main_program(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    if (page == 0 || (page & (page - 1)) != 0)
    {
        return 1;
    }
    for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++)
    {
        const ElfW(Phdr) *p = &info->dlpi_phdr[i];
        if (p->p_type != PT_LOAD || (p->p_flags & PF_W) == 0 || p->p_memsz <= p->p_filesz)
        {
            continue;
        }
        /* Whole pages past the file-backed bytes only: the partial page holding the end of .data is left alone. */
        uintptr_t start = (info->dlpi_addr + p->p_vaddr + p->p_filesz + page - 1) & ~(page - 1);
        uintptr_t end = (info->dlpi_addr + p->p_vaddr + p->p_memsz + page - 1) & ~(page - 1);
        if (end > start)
        {
            (void)madvise((void *)start, end - start, MADV_HUGEPAGE);
            (void)madvise((void *)start, end - start, MADV_POPULATE_WRITE);
        }
    }
    return 1; /* the first object reported is the main program: stop there */
}

__attribute__((constructor)) static void kextrust_prefault(void)
{
    (void)dl_iterate_phdr(kextrust_prefault_main_program, NULL);
}
